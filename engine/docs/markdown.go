package docs

import "strings"

// Markdown renders the document as GitHub-flavoured Markdown with the same text as RST.
func Markdown(d *Document) string {
	var b strings.Builder
	b.WriteString("# " + mdEscape(d.Title) + "\n\n")
	b.WriteString("Generated: " + d.Generated + "\n\n")
	b.WriteString("## Introduction\n\n" + mdEscape(d.Introduction) + "\n")
	for i, s := range d.Sections {
		if i > 0 {
			b.WriteString("\n") // sections two blank lines apart, as in RST
		}
		b.WriteString("\n## " + mdEscape(s.Heading) + "\n\n")
		var paras []string
		for _, p := range s.Paragraphs {
			paras = append(paras, mdEscape(p))
		}
		if s.MergeIntro != "" {
			paras = append(paras, mdEscape(s.MergeIntro), mdTable(s.Merge))
		}
		paras = append(paras, mdEscape(s.PropsIntro), mdEscape(propsLead(s)), mdTable(s.Properties))
		b.WriteString(strings.Join(paras, "\n\n") + "\n")
	}
	return b.String()
}

func mdTable(t Table) string {
	var b strings.Builder
	row := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			b.WriteString(" " + mdEscape(c) + " |")
		}
		b.WriteString("\n")
	}
	row(t.Header)
	b.WriteString("|" + strings.Repeat(" --- |", len(t.Header)) + "\n")
	for _, r := range t.Rows {
		row(r)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

var mdEscaper = strings.NewReplacer(`\`, `\\`, "|", `\|`, "*", `\*`, "_", `\_`, "`", "\\`", "<", `\<`, "[", `\[`)

func mdEscape(s string) string { return mdEscaper.Replace(s) }
