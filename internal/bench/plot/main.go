// Command plot draws the benchmark suite's separated-sites figure: it reads
// the figure's data that `go run ./internal/bench` writes next to its raw
// output (docs/bench/separated.json) and writes the PNG the results page
// shows (docs/bench/separated.png). `make bench` runs it after the suite.
//
//	cd internal/bench/plot && go run .                          # docs/bench/separated.png
//	cd internal/bench/plot && go run . -data DIR/bench/separated.json  # DIR/bench/separated.png
//
// It is a module of its own so that the plotting library and its fonts stay
// out of the library's go.mod; being outside the library's module, it cannot
// import the suite's packages, and the data file is the whole interface
// between the two (its types are copied in figure.go).
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "plot:", err)
		os.Exit(1)
	}
}

func run() error {
	data := flag.String("data", "../../../docs/bench/separated.json", "figure data written by the benchmark suite")
	out := flag.String("out", "", "PNG to write (default: the data file's path with .png for .json)")
	flag.Parse()
	if flag.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if *out == "" {
		base, ok := strings.CutSuffix(*data, ".json")
		if !ok {
			return fmt.Errorf("-data %s does not end in .json: name the PNG with -out", *data)
		}
		*out = base + ".png"
	}
	f, err := readFigure(*data)
	if err != nil {
		return err
	}
	if err := render(f, *out); err != nil {
		return fmt.Errorf("draw %s: %w", *out, err)
	}
	fmt.Fprintln(os.Stderr, "plot: wrote", *out)
	return nil
}
