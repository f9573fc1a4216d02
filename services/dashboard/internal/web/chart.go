package web

// Bar is one bar of a horizontal bar chart.
type Bar struct {
	Label string
	Value float64
	Text  string // the value as shown
}

// Chart is a horizontal SVG bar chart (templates/chart.html); its numbers are also in a table.
type Chart struct {
	ID, Title, Desc string
	Width, Height   int
	Rows            []ChartRow
}

// ChartRow is a laid-out bar.
type ChartRow struct {
	Bar
	Y, W, TextX, TextY int
}

const (
	chartLabelW = 180
	chartBarW   = 320
	chartRowH   = 32
)

// NewChart lays out bars scaled so that top fills the bar area.
func NewChart(id, title, desc string, bars []Bar, top float64) Chart {
	c := Chart{ID: id, Title: title, Desc: desc, Width: chartLabelW + chartBarW + 100, Height: max(1, len(bars))*chartRowH + 8}
	for i, b := range bars {
		w := 0
		if top > 0 && b.Value > 0 {
			w = max(1, int(b.Value/top*chartBarW))
		}
		y := 4 + i*chartRowH
		c.Rows = append(c.Rows, ChartRow{Bar: b, Y: y, W: w, TextX: chartLabelW + w + 6, TextY: y + 17})
	}
	return c
}
