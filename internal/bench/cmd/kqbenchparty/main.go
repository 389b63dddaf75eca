// Command kqbenchparty runs keyquorum parties for the benchmark suite in
// internal/bench/suite: `kqbenchparty init CONFIG` creates the sites' HSM keys and
// prints their party IDs as JSON; `kqbenchparty serve CONFIG` runs the
// sites and answers the driver's requests on stdin and stdout (see package
// internal/bench/internal/party). It uses public fixture pre-parameters: never run
// it for keys that hold value.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/keyquorum/keyquorum/internal/bench/internal/party"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kqbenchparty:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 3 || (os.Args[1] != "init" && os.Args[1] != "serve") {
		return fmt.Errorf("usage: kqbenchparty init|serve CONFIG")
	}
	data, err := os.ReadFile(os.Args[2])
	if err != nil {
		return err
	}
	var cfg party.Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("config %s: %w", os.Args[2], err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if os.Args[1] == "init" {
		ids, err := party.Init(ctx, cfg.Sites)
		if err != nil {
			return err
		}
		return json.NewEncoder(os.Stdout).Encode(ids)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return party.Serve(ctx, cfg, os.Stdin, os.Stdout, log)
}
