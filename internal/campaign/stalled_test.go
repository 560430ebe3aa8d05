package campaign

import (
	"reflect"
	"testing"
	"time"
)

// TestStalledRuns: the stall is judged from the log lines' own times, whatever the test read
// at the stop; a run that spanned it and ended in an error must have said it was fenced.
func TestStalledRuns(t *testing.T) {
	stop := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	line := func(at time.Duration, msg, run, errText string) string {
		l := `{"time":"` + stop.Add(at).Format(time.RFC3339Nano) + `","msg":"` + msg + `","run":"` + run + `"`
		if errText != "" {
			l += `,"error":"` + errText + `"`
		}
		return l + "}\n"
	}
	for _, tc := range []struct {
		name     string
		log      string
		midRun   bool
		unfenced []string
	}{
		{"finished before the stop", line(-2*time.Second, "run started", "r1", "") + line(-time.Second, "run finished", "r1", ""), false, nil},
		{"started after the resume", line(time.Minute, "run started", "r2", "") + line(61*time.Second, "run finished", "r2", ""), false, nil},
		{"done before the stall, logged after it", line(-time.Second, "run started", "r3", "") + line(time.Minute, "run finished", "r3", ""), true, nil},
		{"refused and fenced", line(-time.Second, "run started", "r4", "") + line(time.Minute, "run fenced: its lease was lost; it stopped writing", "r4", "") +
			line(time.Minute, "run finished", "r4", "commit: lease lost"), true, nil},
		{"refused, not fenced", line(-time.Second, "run started", "r5", "") + line(time.Minute, "run finished", "r5", "commit: lease lost"), true, []string{"r5: commit: lease lost"}},
		{"never finished", line(-time.Second, "run started", "r6", "") + "not json\n", true, nil},
	} {
		midRun, unfenced := stalledRuns(tc.log, stop)
		if midRun != tc.midRun || !reflect.DeepEqual(unfenced, tc.unfenced) {
			t.Errorf("%s: stalledRuns = %v, %q; want %v, %q", tc.name, midRun, unfenced, tc.midRun, tc.unfenced)
		}
	}
}
