package main

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Plot writes the separated-sites figure to path (PNG): p50 latency of
// GG18 signing and of GG20 online signing against the round trip time,
// with the min–max range of the runs as error bars, on a logarithmic
// latency axis (the two differ by orders of magnitude).
func Plot(r Results, method, path string) error {
	pts := separatedPoints(r)
	if len(pts) == 0 {
		return fmt.Errorf("no separated-sites results to plot")
	}
	p := plot.New()
	p.Title.Text = "2-of-3 signing latency between separated sites (" + method + ")"
	p.X.Label.Text = "round trip time between sites (ms)"
	p.Y.Label.Text = "p50 latency (ms, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	// Whole decades, so that every decade has its labelled tick.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, pt := range pts {
		for _, c := range []Cell{pt.gg18, pt.gg20} {
			if c.OK && c.Stat.Min > 0 {
				lo, hi = math.Min(lo, c.Stat.Min), math.Max(hi, c.Stat.Max)
			}
		}
	}
	if lo > hi {
		return fmt.Errorf("no positive latencies to plot")
	}
	p.Y.Min, p.Y.Max = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
	// The lower right corner stays empty: GG18 runs along the top, GG20
	// rises from the bottom left.
	p.Legend.Top = false
	p.Legend.Left = false
	p.Legend.XOffs = -vg.Points(6)
	p.Legend.YOffs = vg.Points(6)
	var ticks []plot.Tick
	for _, pt := range pts {
		ticks = append(ticks, plot.Tick{Value: float64(pt.rtt), Label: fmt.Sprint(pt.rtt)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Add(plotter.NewGrid())

	series := []struct {
		name  string
		get   func(separatedPoint) Cell
		color color.Color
		shape draw.GlyphDrawer
	}{
		{"GG18 (tss-lib, 9 rounds)", func(s separatedPoint) Cell { return s.gg18 }, color.RGBA{R: 200, G: 60, B: 40, A: 255}, draw.CircleGlyph{}},
		{"GG20 online (1 round)", func(s separatedPoint) Cell { return s.gg20 }, color.RGBA{R: 30, G: 90, B: 200, A: 255}, draw.BoxGlyph{}},
	}
	for _, s := range series {
		var xys plotter.XYs
		var errs plotter.YErrors
		for _, pt := range pts {
			c := s.get(pt)
			if !c.OK || c.Stat.Min <= 0 {
				continue
			}
			xys = append(xys, plotter.XY{X: float64(pt.rtt), Y: c.Stat.Median})
			errs = append(errs, struct{ Low, High float64 }{c.Stat.Median - c.Stat.Min, c.Stat.Max - c.Stat.Median})
		}
		if len(xys) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return err
		}
		line.Color = s.color
		line.Width = vg.Points(1.5)
		points.Color = s.color
		points.Shape = s.shape
		bars, err := plotter.NewYErrorBars(struct {
			plotter.XYer
			plotter.YErrorer
		}{xys, errs})
		if err != nil {
			return err
		}
		bars.Color = s.color
		p.Add(line, points, bars)
		p.Legend.Add(s.name, line, points)
	}
	return p.Save(7*vg.Inch, 4.5*vg.Inch, path)
}
