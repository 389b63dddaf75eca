package tss

import (
	"fmt"
	"testing"

	"github.com/keyquorum/keyquorum/tss/gg20"
)

// TestVerifierCache_KeepsTheKeyInUse checks the eviction order: a key whose
// verifier is used for signing (ready) is kept while other keys come and
// go, and the least recently used one is dropped. Entries are marked built
// by hand, so no table is computed.
func TestVerifierCache_KeepsTheKeyInUse(t *testing.T) {
	var c verifierCache
	add := func(k string) {
		en, mine := c.entry([]byte(k))
		if !mine {
			t.Fatalf("%s: entry already cached", k)
		}
		en.v = new(gg20.Verifier)
		close(en.ready)
	}
	add("hot")
	for i := 1; i < verifierCacheSize; i++ {
		add(fmt.Sprintf("k%d", i))
	}
	if c.ready([]byte("hot")) == nil { // signing under "hot" again
		t.Fatal("hot key not cached")
	}
	add("new") // the cache is full: k1, used least recently, goes
	if c.ready([]byte("hot")) == nil {
		t.Fatal("the key in use was evicted")
	}
	if c.ready([]byte("k1")) != nil {
		t.Fatal("the least recently used key was kept")
	}
	if len(c.order) != verifierCacheSize || len(c.m) != verifierCacheSize {
		t.Fatalf("cache holds %d/%d entries, want %d", len(c.order), len(c.m), verifierCacheSize)
	}
}
