package web

import (
	"fmt"
	"math"
	"strings"
)

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

// Series is one line of a line chart: a value per x position (nil: unknown, the line breaks).
type Series struct {
	Key, Label string
	Values     []*float64
}

// LineChart is an SVG line chart of rates (0..1) over weeks (templates/chart.html); its numbers
// are also in a table.
type LineChart struct {
	ID, Title, Desc string
	Width, Height   int
	Left, Right     int // plot area's x bounds
	Top, Bottom     int // plot area's y bounds
	YTicks          []Tick
	XTicks          []Tick
	Lines           []Line
}

// Tick is an axis label at a position.
type Tick struct {
	Pos   int
	Label string
}

// Line is a laid-out series: its SVG path, its points and its legend entry.
type Line struct {
	Key, Label string
	Path       string
	Dots       []Dot
	LegendX    int
	LegendY    int
}

// Dot is one known point of a line.
type Dot struct{ X, Y int }

// NewLineChart lays out series of rates over the x labels.
func NewLineChart(id, title, desc string, labels []string, series []Series) LineChart {
	c := LineChart{ID: id, Title: title, Desc: desc, Width: 640, Height: 300, Left: 48, Right: 624, Top: 16, Bottom: 220}
	for _, v := range []float64{0, 0.25, 0.5, 0.75, 1} {
		c.YTicks = append(c.YTicks, Tick{Pos: c.Bottom - int(v*float64(c.Bottom-c.Top)), Label: fmt.Sprintf("%d%%", int(v*100))})
	}
	x := func(i int) int {
		if len(labels) <= 1 {
			return (c.Left + c.Right) / 2
		}
		return c.Left + i*(c.Right-c.Left)/(len(labels)-1)
	}
	step := max(1, (len(labels)+7)/8) // at most about 8 x labels
	for i, l := range labels {
		if i%step == 0 || i == len(labels)-1 {
			c.XTicks = append(c.XTicks, Tick{Pos: x(i), Label: l})
		}
	}
	for si, s := range series {
		ln := Line{Key: s.Key, Label: s.Label, LegendX: c.Left + si*170, LegendY: c.Bottom + 64}
		var b strings.Builder
		pen := false
		for i, v := range s.Values {
			if v == nil {
				pen = false
				continue
			}
			d := Dot{X: x(i), Y: c.Bottom - int(math.Round(min(max(*v, 0), 1)*float64(c.Bottom-c.Top)))}
			ln.Dots = append(ln.Dots, d)
			if pen {
				fmt.Fprintf(&b, " L%d %d", d.X, d.Y)
			} else {
				fmt.Fprintf(&b, " M%d %d", d.X, d.Y)
			}
			pen = true
		}
		ln.Path = strings.TrimSpace(b.String())
		c.Lines = append(c.Lines, ln)
	}
	return c
}
