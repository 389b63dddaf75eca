package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// Figure is the separated-sites figure as data. The suite writes it to
// OUT/bench/separated.json; the renderer in internal/bench/plot, a module
// of its own so that the library's go.mod does not carry the plotting
// library, reads it and draws OUT/bench/separated.png. The renderer keeps
// its own copy of these types: change both together.
type Figure struct {
	Title  string   `json:"title"`
	XLabel string   `json:"x_label"`
	YLabel string   `json:"y_label"`
	Series []Series `json:"series"`
}

// Series is one line of a [Figure]: a name for the legend and its points
// in ascending X.
type Series struct {
	Name   string  `json:"name"`
	Points []Point `json:"points"`
}

// Point is one measurement of a [Series]: the median of the runs at X,
// drawn with the runs' range (Min to Max) as an error bar. The Y axis is
// logarithmic, so every value is positive.
type Point struct {
	X      float64 `json:"x"`
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// errNoFigure reports that a run measured nothing the figure could show.
var errNoFigure = errors.New("no separated-sites results to plot")

// SeparatedFigure returns the separated-sites figure: p50 latency of GG18
// signing and of GG20 online signing against the round trip time, with
// the min–max range of the runs as error bars, on a logarithmic latency
// axis (the two differ by orders of magnitude). method says how the round
// trip time was made ("netem" or "emulated latency").
func SeparatedFigure(r Results, method string) (Figure, error) {
	f := Figure{
		Title:  "2-of-3 signing latency between separated sites (" + method + ")",
		XLabel: "round trip time between sites (ms)",
		YLabel: "p50 latency (ms, log scale)",
	}
	pts := separatedPoints(r)
	series := []struct {
		name string
		get  func(separatedPoint) Cell
	}{
		{"GG18 (tss-lib, 9 rounds)", func(s separatedPoint) Cell { return s.gg18 }},
		{"GG20 online (1 round)", func(s separatedPoint) Cell { return s.gg20 }},
	}
	for _, s := range series {
		line := Series{Name: s.name}
		for _, pt := range pts {
			c := s.get(pt)
			if !c.OK || c.Stat.Min <= 0 {
				continue
			}
			line.Points = append(line.Points, Point{X: float64(pt.rtt), Median: c.Stat.Median, Min: c.Stat.Min, Max: c.Stat.Max})
		}
		if len(line.Points) > 0 {
			f.Series = append(f.Series, line)
		}
	}
	if len(f.Series) == 0 {
		return f, errNoFigure
	}
	return f, nil
}

// writeFigure writes f as indented JSON to path.
func writeFigure(f Figure, path string) error {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("figure data: %w", err)
	}
	return nil
}
