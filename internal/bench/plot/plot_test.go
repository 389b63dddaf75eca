package main

import (
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// sample is a figure in the shape the suite writes.
func sample() figure {
	return figure{
		Title:  "2-of-3 signing latency between separated sites (emulated latency)",
		XLabel: "round trip time between sites (ms)",
		YLabel: "p50 latency (ms, log scale)",
		Series: []series{
			{Name: "GG18 (tss-lib, 9 rounds)", Points: []point{{0, 1000, 900, 1100}, {50, 1600, 1500, 1700}, {100, 2200, 2100, 2300}}},
			{Name: "GG20 online (1 round)", Points: []point{{0, 20, 18, 25}, {50, 70, 68, 75}, {100, 120, 118, 125}}},
		},
	}
}

func TestRender_WritesPNGFromTheSuitesData(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "separated.json")
	if err := os.WriteFile(data, []byte(`{
  "title": "t", "x_label": "x", "y_label": "y",
  "series": [
    {"name": "GG18", "points": [{"x": 0, "median": 1000, "min": 900, "max": 1100}, {"x": 50, "median": 1600, "min": 1500, "max": 1700}]},
    {"name": "GG20", "points": [{"x": 0, "median": 20, "min": 18, "max": 25}, {"x": 50, "median": 70, "min": 68, "max": 75}]}
  ]
}`), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := readFigure(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Series) != 2 || f.Series[1].Points[1] != (point{50, 70, 68, 75}) {
		t.Fatalf("read %+v", f)
	}
	out := filepath.Join(dir, "separated.png")
	if err := render(f, out); err != nil {
		t.Fatal(err)
	}
	file, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	img, err := png.Decode(file)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 200 {
		t.Errorf("plot is %v", b)
	}
}

func TestRender_RefusesWhatALogAxisCannotShow(t *testing.T) {
	for name, edit := range map[string]func(*figure){
		"no series":        func(f *figure) { f.Series = nil },
		"no points":        func(f *figure) { f.Series = []series{{Name: "empty"}} },
		"zero median":      func(f *figure) { f.Series[0].Points[0] = point{0, 0, 0, 0} },
		"negative minimum": func(f *figure) { f.Series[1].Points[2].Min = -1 },
		"infinite maximum": func(f *figure) { f.Series[1].Points[2].Max = math.Inf(1) },
		"NaN median":       func(f *figure) { f.Series[0].Points[1].Median = math.NaN() },
		"NaN x":            func(f *figure) { f.Series[0].Points[1].X = math.NaN() },
		"median above max": func(f *figure) { f.Series[0].Points[1].Median = 1800 },
	} {
		t.Run(name, func(t *testing.T) {
			f := sample()
			edit(&f)
			out := filepath.Join(t.TempDir(), "separated.png")
			if err := render(f, out); !errors.Is(err, errBadFigure) {
				t.Fatalf("render: %v, want errBadFigure", err)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused figure left %s behind (%v)", out, err)
			}
		})
	}
}

func TestReadFigure_NamesTheProblem(t *testing.T) {
	dir := t.TempDir()
	if _, err := readFigure(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"series": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readFigure(bad); !errors.Is(err, errBadFigure) {
		t.Errorf("truncated JSON: %v, want errBadFigure", err)
	}
}
