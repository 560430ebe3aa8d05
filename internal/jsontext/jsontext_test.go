package jsontext

import (
	"bytes"
	"encoding/json"
	"testing"
)

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", `quote " and \ back`, "<a href='x'>&amp;</a>", "tab\t nl\n cr\r \x00\x1f\x7f",
		"\u2028\u2029", "caf\xe9 \xff", "emoji 🚀", "\ufffd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s, true); !bytes.Equal(got, want) {
			t.Errorf("AppendString(%q, true) = %s, json.Marshal = %s", s, got, want)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		if got, want := AppendString(nil, s, false), bytes.TrimSuffix(buf.Bytes(), []byte("\n")); !bytes.Equal(got, want) {
			t.Errorf("AppendString(%q, false) = %s, an Encoder without HTML escaping = %s", s, got, want)
		}
	})
}

// Every byte value at every place of an eight-byte word, with and without HTML escaping.
func TestAppendStringEveryByteInAWord(t *testing.T) {
	for b := 0; b < 256; b++ {
		for at := 0; at < 8; at++ {
			s := []byte("abcdefghij")
			s[at] = byte(b)
			want, _ := json.Marshal(string(s))
			if got := AppendString(nil, string(s), true); !bytes.Equal(got, want) {
				t.Errorf("AppendString(%q, true) = %s, json.Marshal = %s", s, got, want)
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.Encode(string(s))
			if got, want := AppendString(nil, string(s), false), bytes.TrimSuffix(buf.Bytes(), []byte("\n")); !bytes.Equal(got, want) {
				t.Errorf("AppendString(%q, false) = %s, an Encoder without HTML escaping = %s", s, got, want)
			}
		}
	}
}

func BenchmarkAppendString(b *testing.B) {
	s := "Espresso Green 250 g from Kaffa, oolong. Item 2 of the catalogue."
	var dst []byte
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		dst = AppendString(dst[:0], s, false)
	}
}

// SkipNumber takes the longest JSON number at the start, as the grammar writes it.
func TestSkipNumber(t *testing.T) {
	for _, tc := range []struct {
		in          string
		end         int
		integer, ok bool
	}{
		{"0", 1, true, true}, {"-0", 2, true, true}, {"12345,", 5, true, true}, {"1.5", 3, false, true},
		{"-1.25e+10]", 9, false, true}, {"2E-3", 4, false, true}, {"01", 1, true, true}, {"1e5x", 3, false, true},
		{"", 0, false, false}, {"-", 1, false, false}, {"1.", 2, false, false}, {".5", 0, false, false},
		{"1e", 2, false, false}, {"1e+", 3, false, false}, {"x", 0, false, false}, {"-a", 1, false, false},
	} {
		end, integer, ok := SkipNumber([]byte(tc.in), 0)
		if ok != tc.ok || ok && (end != tc.end || integer != tc.integer) {
			t.Errorf("SkipNumber(%q) = %d, %v, %v; want %d, %v, %v", tc.in, end, integer, ok, tc.end, tc.integer, tc.ok)
		}
	}
}
