package main

import (
	"fmt"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// styles are the series' colours and glyphs, in the suite's order (GG18,
// then GG20 online); further series reuse them.
var styles = []struct {
	color color.Color
	shape draw.GlyphDrawer
}{
	{color.RGBA{R: 200, G: 60, B: 40, A: 255}, draw.CircleGlyph{}},
	{color.RGBA{R: 30, G: 90, B: 200, A: 255}, draw.BoxGlyph{}},
}

// render draws f to path (PNG, 7×4.5 in): each series as a line through
// its medians with min–max error bars, on a logarithmic Y axis spanning
// whole decades and with a labelled X tick at every measured X.
func render(f figure, path string) error {
	if err := f.check(); err != nil {
		return err
	}
	p := plot.New()
	p.Title.Text = f.Title
	p.X.Label.Text = f.XLabel
	p.Y.Label.Text = f.YLabel
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	// Whole decades, so that every decade has its labelled tick.
	lo, hi := math.Inf(1), math.Inf(-1)
	var xs []float64
	for _, s := range f.Series {
		for _, pt := range s.Points {
			lo, hi = math.Min(lo, pt.Min), math.Max(hi, pt.Max)
			xs = append(xs, pt.X)
		}
	}
	p.Y.Min, p.Y.Max = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
	// The lower right corner stays empty: GG18 runs along the top, GG20
	// rises from the bottom left.
	p.Legend.Top = false
	p.Legend.Left = false
	p.Legend.XOffs = -vg.Points(6)
	p.Legend.YOffs = vg.Points(6)
	slices.Sort(xs)
	var ticks []plot.Tick
	for _, x := range slices.Compact(xs) {
		ticks = append(ticks, plot.Tick{Value: x, Label: fmt.Sprint(x)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Add(plotter.NewGrid())

	for i, s := range f.Series {
		if len(s.Points) == 0 {
			continue
		}
		style := styles[i%len(styles)]
		var xys plotter.XYs
		var errs plotter.YErrors
		for _, pt := range s.Points {
			xys = append(xys, plotter.XY{X: pt.X, Y: pt.Median})
			errs = append(errs, struct{ Low, High float64 }{pt.Median - pt.Min, pt.Max - pt.Median})
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return err
		}
		line.Color = style.color
		line.Width = vg.Points(1.5)
		points.Color = style.color
		points.Shape = style.shape
		bars, err := plotter.NewYErrorBars(struct {
			plotter.XYer
			plotter.YErrorer
		}{xys, errs})
		if err != nil {
			return err
		}
		bars.Color = style.color
		p.Add(line, points, bars)
		p.Legend.Add(s.Name, line, points)
	}
	return p.Save(7*vg.Inch, 4.5*vg.Inch, path)
}
