package docs

import (
	"regexp"
	"strings"
)

// RST renders the document as reStructuredText, in the seed's exact layout: paragraphs one
// blank line apart, sections two.
func RST(d *Document) string {
	var b strings.Builder
	title := rstEscape(d.Title)
	bar := strings.Repeat("=", displayWidth(title))
	b.WriteString(bar + "\n" + title + "\n" + bar + "\n\n")
	b.WriteString("Generated: " + d.Generated + "\n\n")
	b.WriteString("Introduction\n------------\n\n")
	b.WriteString(rstEscape(d.Introduction) + "\n")
	for i, s := range d.Sections {
		if i == 0 {
			b.WriteString("\n")
		} else {
			b.WriteString("\n\n")
		}
		heading := rstEscape(s.Heading)
		b.WriteString(heading + "\n" + strings.Repeat("-", displayWidth(heading)) + "\n")
		var paras []string
		for _, p := range s.Paragraphs {
			paras = append(paras, rstEscape(p))
		}
		if s.MergeIntro != "" {
			paras = append(paras, rstEscape(s.MergeIntro), rstTable(s.Merge))
		}
		paras = append(paras, rstEscape(s.PropsIntro))
		paras = append(paras, rstEscape(propsLead(s))+"\n\n"+rstTable(s.Properties))
		b.WriteString(strings.Join(paras, "\n\n") + "\n")
	}
	return b.String()
}

// propsLead is the sentence before the property table, derived from the table's headers.
func propsLead(s Section) string {
	S := strings.TrimSuffix(s.Properties.Header[0], " Property")
	T := strings.TrimSuffix(s.Properties.Header[1], " Property")
	return "The following properties are synchronized between a " + S + " and a " + T + ":"
}

func rstTable(t Table) string {
	var b strings.Builder
	b.WriteString(".. list-table::\n   :header-rows: 1\n")
	b.WriteString("\n")
	rows := append([][]string{t.Header}, t.Rows...)
	for i, row := range rows {
		for j, cell := range row {
			prefix := "     - "
			if j == 0 {
				prefix = "   * - "
			}
			b.WriteString(prefix + rstCell(cell))
			if i < len(rows)-1 || j < len(row)-1 {
				b.WriteString("\n")
			}
		}
	}
	return b.String()
}

// rstCell escapes a table cell so that it stays text: a start that RST would read as a block
// construct (a bullet "- x", an enumerator "1)", a comment "..", a field ":x:", a literal block
// "::") is escaped.
func rstCell(s string) string {
	s = rstEscape(s)
	if s == "" {
		return ""
	}
	if strings.HasSuffix(s, "::") {
		s = s[:len(s)-1] + `\:`
	}
	if blockStart.MatchString(s) {
		s = `\` + s
	}
	return s
}

var blockStart = regexp.MustCompile(`^([-+•‣⁃]( |$)|\.\.( |$)|:|\| |>>>|\(?([0-9]+|[A-Za-z]|[ivxlcdmIVXLCDM]+|#)[.)]( |$))`)

// rstEscape backslash-escapes the characters that would start inline markup or a reference in
// names taken from user files (a column called "price_" or "*total*").
func rstEscape(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		switch r {
		case '\\', '*', '`', '|':
			b.WriteRune('\\')
		case '_':
			if i == len(rs)-1 || !isWordRune(rs[i+1]) {
				b.WriteRune('\\')
			}
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isWordRune(r rune) bool {
	return r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r > 127
}
