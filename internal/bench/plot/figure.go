package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
)

// figure is the separated-sites figure as data, as the benchmark suite
// writes it (internal/bench/figure.go holds the writer's copy of these
// types: change both together).
type figure struct {
	Title  string   `json:"title"`
	XLabel string   `json:"x_label"`
	YLabel string   `json:"y_label"`
	Series []series `json:"series"`
}

// series is one line: a legend name and its points in ascending X.
type series struct {
	Name   string  `json:"name"`
	Points []point `json:"points"`
}

// point is the median of the runs at X with their range as an error bar.
type point struct {
	X      float64 `json:"x"`
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// errBadFigure marks data the renderer cannot draw.
var errBadFigure = errors.New("figure data cannot be drawn")

// readFigure reads and checks the figure data at path.
func readFigure(path string) (figure, error) {
	var f figure
	data, err := os.ReadFile(path)
	if err != nil {
		return f, fmt.Errorf("read figure data: %w (run the suite first: go run ./internal/bench from the repository root)", err)
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return f, fmt.Errorf("%s: %w: %w", path, errBadFigure, err)
	}
	if err := f.check(); err != nil {
		return f, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// check refuses what the logarithmic latency axis cannot show: no points,
// or a value that is not a positive finite number, or a range that does
// not contain its median.
func (f figure) check() error {
	n := 0
	for _, s := range f.Series {
		for _, p := range s.Points {
			for _, v := range []float64{p.Median, p.Min, p.Max} {
				if !(v > 0) || math.IsInf(v, 0) {
					return fmt.Errorf("%w: series %q at x=%v has value %v; the latency axis is logarithmic and needs positive values", errBadFigure, s.Name, p.X, v)
				}
			}
			if math.IsNaN(p.X) || math.IsInf(p.X, 0) {
				return fmt.Errorf("%w: series %q has x=%v", errBadFigure, s.Name, p.X)
			}
			if p.Min > p.Median || p.Median > p.Max {
				return fmt.Errorf("%w: series %q at x=%v: median %v outside its range [%v, %v]", errBadFigure, s.Name, p.X, p.Median, p.Min, p.Max)
			}
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("%w: no points", errBadFigure)
	}
	return nil
}
