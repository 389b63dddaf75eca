package tss_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/tss"
)

// stubNetwork is a Network that only has an identity: enough for New,
// which does not send or receive.
type stubNetwork struct {
	tss.Network
	self tss.PartyID
}

func (n stubNetwork) Self() tss.PartyID { return n.self }

// stubStore is a Store that is never called: validation does not touch
// the store.
type stubStore struct{ tss.Store }

// TestConfig_RejectsEachInvalidField sets one field of an otherwise valid
// Config, PreParamsConfig or PoolConfig to a value that cannot work and
// checks that the constructor refuses it with ErrInvalidConfig.
func TestConfig_RejectsEachInvalidField(t *testing.T) {
	valid := func() tss.Config {
		return tss.Config{Network: stubNetwork{self: "site-a"}, Store: stubStore{}}
	}
	for _, tc := range []struct {
		name string
		set  func(*tss.Config)
	}{
		{"Network missing", func(c *tss.Config) { c.Network = nil }},
		{"Network with an invalid identity", func(c *tss.Config) { c.Network = stubNetwork{self: "has space"} }},
		{"Store missing", func(c *tss.Config) { c.Store = nil }},
		{"RoundTimeout negative", func(c *tss.Config) { c.RoundTimeout = -time.Second }},
		{"JoinTimeout negative", func(c *tss.Config) { c.JoinTimeout = -time.Nanosecond }},
		{"MaxSessions negative", func(c *tss.Config) { c.MaxSessions = -1 }},
		{"MaxSessionsPerPeer negative", func(c *tss.Config) { c.MaxSessionsPerPeer = -1 }},
		{"MaxSessionsPerPeer above MaxSessions", func(c *tss.Config) { c.MaxSessions = 4; c.MaxSessionsPerPeer = 5 }},
	} {
		t.Run("Config/"+tc.name, func(t *testing.T) {
			cfg := valid()
			tc.set(&cfg)
			if _, err := tss.New(cfg); !errors.Is(err, tss.ErrInvalidConfig) {
				t.Fatalf("New: got %v, want ErrInvalidConfig", err)
			}
		})
	}
	if _, err := tss.New(valid()); err != nil {
		t.Fatalf("New with only the required fields: %v", err)
	}

	for _, tc := range []struct {
		name string
		cfg  tss.PreParamsConfig
	}{
		{"Store missing", tss.PreParamsConfig{}},
		{"Target negative", tss.PreParamsConfig{Store: stubStore{}, Target: -1}},
		{"Concurrency negative", tss.PreParamsConfig{Store: stubStore{}, Concurrency: -2}},
		{"Timeout negative", tss.PreParamsConfig{Store: stubStore{}, Timeout: -time.Minute}},
	} {
		t.Run("PreParamsConfig/"+tc.name, func(t *testing.T) {
			if _, err := tss.NewPreParamsPool(tc.cfg); !errors.Is(err, tss.ErrInvalidConfig) {
				t.Fatalf("NewPreParamsPool: got %v, want ErrInvalidConfig", err)
			}
		})
	}
	if _, err := tss.NewPreParamsPool(tss.PreParamsConfig{Store: stubStore{}}); err != nil {
		t.Fatalf("NewPreParamsPool with only a store: %v", err)
	}

	e, err := tss.New(valid())
	if err != nil {
		t.Fatal(err)
	}
	spec := tss.PoolSpec{KeyID: "k", Signers: []tss.PartyID{"site-a", "site-b"}}
	for _, tc := range []struct {
		name string
		cfg  tss.PoolConfig
	}{
		{"Target zero", tss.PoolConfig{PoolSpec: spec}},
		{"Target negative", tss.PoolConfig{PoolSpec: spec, Target: -1}},
		{"Parallel negative", tss.PoolConfig{PoolSpec: spec, Target: 1, Parallel: -1}},
		{"Interval negative", tss.PoolConfig{PoolSpec: spec, Target: 1, Interval: -time.Second}},
		{"ReconcileEvery negative", tss.PoolConfig{PoolSpec: spec, Target: 1, ReconcileEvery: -time.Second}},
	} {
		t.Run("PoolConfig/"+tc.name, func(t *testing.T) {
			// Validation comes before anything else, so the engine need
			// not run.
			err := e.MaintainPool(context.Background(), tc.cfg)
			if !errors.Is(err, tss.ErrInvalidConfig) {
				t.Fatalf("MaintainPool: got %v, want ErrInvalidConfig", err)
			}
		})
	}
	// A missing target was a bad request before it was an invalid
	// configuration; callers that test for ErrBadRequest still see it.
	if err := e.MaintainPool(context.Background(), tss.PoolConfig{PoolSpec: spec}); !errors.Is(err, tss.ErrBadRequest) {
		t.Fatalf("MaintainPool without a target: got %v, want it to wrap ErrBadRequest too", err)
	}
}
