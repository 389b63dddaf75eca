package offline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/tss"
)

// seqOffset is the offset of the sequence field in a bundle of h.
func seqOffset(h Header) int {
	return len(magic) + 1 + 6 + 1 + len(h.Committee) + 1 + len(h.Sender) + 1 + len(h.Recipient)
}

// resign replaces bd's signature with a new one by s over the (changed)
// bytes: what a member that signs garbage would send.
func resign(t *testing.T, s *testSite, b []byte) []byte {
	t.Helper()
	bd, err := parseBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Identity.SignDigest(context.Background(), signedDigest(bd.signed))
	if err != nil {
		t.Fatal(err)
	}
	out := slices.Clone(bd.signed)
	out = append(out, byte(len(sig)))
	return append(out, sig...)
}

func export(t *testing.T, from *Network, to tss.PartyID, m ...*tss.Message) []byte {
	t.Helper()
	ctx := context.Background()
	for _, mm := range m {
		if err := from.Send(ctx, mm); err != nil {
			t.Fatal(err)
		}
	}
	b, err := from.Export(ctx, to)
	if err != nil {
		t.Fatal(err)
	}
	if b == nil {
		t.Fatal("Export returned no bundle")
	}
	return b
}

func TestImport_DeliversMessages(t *testing.T) {
	sites := newSites(t, 3)
	all := sites
	a, b := newNet(t, sites[0], all), newNet(t, sites[1], all)
	c := sites[2]
	ctx := context.Background()
	m1 := msg(a, 1, 1, "round one", b.Self(), tss.PartyID(sitesID(c)))
	m1.Broadcast = true
	m2 := msg(a, 1, 2, "round two", b.Self())
	m3 := msg(a, 2, 1, "", b.Self())
	m3.Type = tss.MsgAccept
	bundle := export(t, a, b.Self(), m1, m2, m3)
	if n := a.Pending(b.Self()); n != 0 {
		t.Fatalf("%d messages still pending after Export", n)
	}
	if more, err := a.Export(ctx, b.Self()); more != nil || err != nil {
		t.Fatalf("second Export with nothing queued: %d bytes, %v", len(more), err)
	}
	h, err := b.Import(ctx, bundle)
	if err != nil {
		t.Fatal(err)
	}
	if h.Sender != a.Self() || h.Recipient != b.Self() || h.Sequence != 1 || h.Messages != 3 || len(h.Contents) != 3 || h.Committee != "cold-1" {
		t.Fatalf("header %+v", h)
	}
	for _, want := range []*tss.Message{m1, m2, m3} {
		got, err := b.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got.From != want.From || got.Session != want.Session || got.Type != want.Type || got.Round != want.Round ||
			got.Broadcast != want.Broadcast || !bytes.Equal(got.Payload, want.Payload) || !slices.Equal(got.To, want.To) {
			t.Fatalf("received %+v, want %+v", got, want)
		}
	}
	// The header is readable without keys; nothing in it is secret.
	if ih, err := Inspect(bundle); err != nil || ih.Sequence != 1 {
		t.Fatalf("Inspect: %+v, %v", ih, err)
	}
	if bytes.Contains(bundle, []byte("round one")) {
		t.Fatal("a payload is in clear in the bundle")
	}
}

func sitesID(s *testSite) string { return string(s.ID) }

// TestImport_RefusesBadBundles: every kind of bad bundle is refused with
// its own error, and a refusal changes nothing: the good bundle is still
// accepted afterwards.
func TestImport_RefusesBadBundles(t *testing.T) {
	sites := newSites(t, 4)
	members, outsider := sites[:3], sites[3]
	clkA, clkB := newClock(), newClock()
	a := newNet(t, members[0], members, withClock(clkA))
	b := newNet(t, members[1], members, withClock(clkB))
	cID := members[2].ID
	aOther := newNet(t, members[0], members, withClock(clkA), func(c *Config) { c.Committee = "cold-2" })
	d := newNet(t, outsider, append([]*testSite{outsider}, members...), withClock(clkA))
	ctx := context.Background()

	flip := func(b []byte, i int) []byte { out := slices.Clone(b); out[i] ^= 0x01; return out }
	cases := []struct {
		name string
		bad  func(t *testing.T, good []byte) []byte
		want error
	}{
		{"tampered header (created)", func(t *testing.T, g []byte) []byte { h, _ := Inspect(g); return flip(g, seqOffset(h)+8+7) }, ErrTampered},
		{"tampered header (contents)", func(t *testing.T, g []byte) []byte { bd, _ := parseBundle(g); return flip(g, len(bd.header)-1) }, ErrTampered},
		{"tampered ciphertext", func(t *testing.T, g []byte) []byte { bd, _ := parseBundle(g); return flip(g, len(bd.signed)-1) }, ErrTampered},
		{"tampered encapsulated key", func(t *testing.T, g []byte) []byte { bd, _ := parseBundle(g); return flip(g, len(bd.header)+10) }, ErrTampered},
		{"tampered signature", func(t *testing.T, g []byte) []byte { return flip(g, len(g)-3) }, ErrTampered},
		{"header changed and re-signed by the sender", func(t *testing.T, g []byte) []byte {
			h, _ := Inspect(g)
			return resign(t, members[0], flip(g, seqOffset(h)+8+8+7)) // expires, 1 ms later
		}, ErrTampered},
		{"ciphertext changed and re-signed by the sender", func(t *testing.T, g []byte) []byte {
			bd, _ := parseBundle(g)
			return resign(t, members[0], flip(g, len(bd.signed)-20))
		}, ErrTampered},
		{"wrong recipient", func(t *testing.T, g []byte) []byte {
			return export(t, a, cID, msg(a, 9, 1, "for c", cID))
		}, ErrWrongRecipient},
		{"wrong committee", func(t *testing.T, g []byte) []byte {
			return export(t, aOther, b.Self(), msg(aOther, 9, 1, "other committee", b.Self()))
		}, ErrWrongCommittee},
		{"from a party outside the committee", func(t *testing.T, g []byte) []byte {
			return export(t, d, b.Self(), msg(d, 9, 1, "outsider", b.Self()))
		}, ErrUnknownSender},
		{"expired", func(t *testing.T, g []byte) []byte {
			clkB.Advance(DefaultTTL)
			t.Cleanup(func() { clkB.Advance(-DefaultTTL) })
			return g
		}, ErrExpired},
		{"made in the future", func(t *testing.T, g []byte) []byte {
			clkB.Advance(-time.Hour)
			t.Cleanup(func() { clkB.Advance(time.Hour) })
			return g
		}, ErrExpired},
		{"truncated by one byte", func(t *testing.T, g []byte) []byte { return g[:len(g)-1] }, ErrMalformed},
		{"truncated to the header", func(t *testing.T, g []byte) []byte { bd, _ := parseBundle(g); return g[:len(bd.header)] }, ErrMalformed},
		{"trailing byte", func(t *testing.T, g []byte) []byte { return append(slices.Clone(g), 0) }, ErrMalformed},
		{"empty", func(t *testing.T, g []byte) []byte { return nil }, ErrMalformed},
		{"garbage", func(t *testing.T, g []byte) []byte { h := sha256.Sum256(g); return bytes.Repeat(h[:], 40) }, ErrMalformed},
		{"another format version", func(t *testing.T, g []byte) []byte { out := slices.Clone(g); out[4] = 2; return out }, ErrUnsupportedVersion},
		{"another AEAD", func(t *testing.T, g []byte) []byte { out := slices.Clone(g); out[10] = 3; return out }, ErrUnsupportedVersion},
		{"oversized file", func(t *testing.T, g []byte) []byte { return append(slices.Clone(g), make([]byte, MaxBundleSize)...) }, ErrTooLarge},
		{"message count over the limit", func(t *testing.T, g []byte) []byte {
			h, _ := Inspect(g)
			out := slices.Clone(g)
			binary.BigEndian.PutUint32(out[seqOffset(h)+24:], MaxMessages+1)
			return out
		}, ErrTooLarge},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			good := export(t, a, b.Self(), msg(a, byte(i), 1, "good "+tc.name, b.Self()), msg(a, byte(i), 2, "more", b.Self()))
			bad := tc.bad(t, good)
			_, err := b.Import(ctx, bad)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Import: %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), "good "+tc.name) {
				t.Fatalf("error shows a payload: %v", err)
			}
			// Nothing was queued and the channel still accepts the good bundle.
			tctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
			defer cancel()
			if m, err := b.Receive(tctx); err == nil {
				t.Fatalf("a refused bundle queued %+v", m)
			}
			if tc.want == ErrExpired {
				return // the good bundle is the bad one
			}
			if _, err := b.Import(ctx, good); err != nil {
				t.Fatalf("the good bundle after the bad one: %v", err)
			}
			for range 2 {
				if _, err := b.Receive(ctx); err != nil {
					t.Fatal(err)
				}
			}
		})
		if tc.want == ErrExpired {
			// The expired bundle is gone for good; its number is skipped.
			h, _ := Inspect(export(t, a, b.Self(), msg(a, 0xee, 1, "probe", b.Self())))
			if _, err := b.Import(ctx, export(t, a, b.Self(), msg(a, 0xee, 2, "next", b.Self()))); !errors.Is(err, ErrOutOfOrder) {
				t.Fatalf("after a lost bundle: %v, want ErrOutOfOrder", err)
			}
			if err := b.Skip(ctx, a.Self(), h.Sequence); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Import(ctx, export(t, a, b.Self(), msg(a, 0xee, 3, "after skip", b.Self()))); !errors.Is(err, ErrOutOfOrder) {
				t.Fatalf("bundle after the one skipped past: %v, want ErrOutOfOrder (one more was made)", err)
			}
			if err := b.Skip(ctx, a.Self(), h.Sequence+2); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Every prefix of a good bundle is malformed, never a panic.
	good := export(t, a, b.Self(), msg(a, 0xf0, 1, "prefixes", b.Self()))
	for n := range len(good) {
		if _, err := b.Import(ctx, good[:n]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("prefix of %d bytes: %v, want ErrMalformed", n, err)
		}
	}
}

func TestImport_RefusesReplayAndReorder(t *testing.T) {
	sites := newSites(t, 2)
	a, b := newNet(t, sites[0], sites), newNet(t, sites[1], sites)
	ctx := context.Background()
	b1 := export(t, a, b.Self(), msg(a, 1, 1, "one", b.Self()))
	b2 := export(t, a, b.Self(), msg(a, 1, 2, "two", b.Self()))
	b3 := export(t, a, b.Self(), msg(a, 1, 3, "three", b.Self()))
	if _, err := b.Import(ctx, b2); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("bundle 2 before 1: %v, want ErrOutOfOrder", err)
	}
	if _, err := b.Import(ctx, b1); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Import(ctx, b1); !errors.Is(err, ErrReplayed) {
		t.Fatalf("bundle 1 again: %v, want ErrReplayed", err)
	}
	if _, err := b.Import(ctx, b3); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("bundle 3 before 2: %v, want ErrOutOfOrder", err)
	}
	if _, err := b.Import(ctx, b2); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Import(ctx, b3); err != nil {
		t.Fatal(err)
	}
	for _, old := range [][]byte{b1, b2, b3} {
		if _, err := b.Import(ctx, old); !errors.Is(err, ErrReplayed) {
			t.Fatalf("old bundle: %v, want ErrReplayed", err)
		}
	}
	for _, want := range []string{"one", "two", "three"} {
		m, err := b.Receive(ctx)
		if err != nil || string(m.Payload) != want {
			t.Fatalf("received %v, %v; want %q", m, err, want)
		}
	}
}

// TestSequence_SurvivesRestart: a restarted recipient refuses a bundle it
// accepted before the restart, and a restarted sender goes on numbering.
func TestSequence_SurvivesRestart(t *testing.T) {
	sites := newSites(t, 2)
	ctx := context.Background()
	a, b := newNet(t, sites[0], sites), newNet(t, sites[1], sites)
	b1 := export(t, a, b.Self(), msg(a, 1, 1, "one", b.Self()))
	if _, err := b.Import(ctx, b1); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b.Close()

	a, b = newNet(t, sites[0], sites), newNet(t, sites[1], sites)
	if _, err := b.Import(ctx, b1); !errors.Is(err, ErrReplayed) {
		t.Fatalf("old bundle after restart: %v, want ErrReplayed", err)
	}
	b2 := export(t, a, b.Self(), msg(a, 1, 2, "two", b.Self()))
	if h, _ := Inspect(b2); h.Sequence != 2 {
		t.Fatalf("restarted sender numbered its bundle %d, want 2", h.Sequence)
	}
	if _, err := b.Import(ctx, b2); err != nil {
		t.Fatal(err)
	}
}

func TestNetwork_Bounds(t *testing.T) {
	sites := newSites(t, 2)
	ctx := context.Background()
	a := newNet(t, sites[0], sites, func(c *Config) { c.MaxQueued = 2 })
	b := newNet(t, sites[1], sites, func(c *Config) { c.MaxQueued = 2 })
	// Send blocks while the queue to a recipient is full.
	for i := range 2 {
		if err := a.Send(ctx, msg(a, 1, uint32(i+1), "x", b.Self())); err != nil {
			t.Fatal(err)
		}
	}
	tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := a.Send(tctx, msg(a, 1, 3, "x", b.Self())); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send to a full queue: %v, want to block until the deadline", err)
	}
	first, err := a.Export(ctx, b.Self())
	if err != nil {
		t.Fatal(err)
	}
	second := export(t, a, b.Self(), msg(a, 1, 3, "x", b.Self()), msg(a, 1, 4, "x", b.Self()))
	if _, err := b.Import(ctx, first); err != nil {
		t.Fatal(err)
	}
	// The receive queue holds two; the second bundle waits.
	if _, err := b.Import(ctx, second); !errors.Is(err, ErrInboxFull) {
		t.Fatalf("Import into a full receive queue: %v, want ErrInboxFull", err)
	}
	for range 2 {
		if _, err := b.Receive(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Import(ctx, second); err != nil {
		t.Fatalf("Import after the queue drained: %v", err)
	}
	// A recipient outside the committee is unreachable.
	var ue *tss.UnreachableError
	if err := a.Send(ctx, msg(a, 1, 5, "x", "QmNotAMember")); !errors.As(err, &ue) || !errors.Is(err, ErrNotInCommittee) {
		t.Fatalf("Send outside the committee: %v", err)
	}
	if _, err := a.Export(ctx, "QmNotAMember"); !errors.Is(err, ErrNotInCommittee) {
		t.Fatalf("Export outside the committee: %v", err)
	}
	// After Close everything says so.
	b.Close()
	if _, err := b.Receive(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Receive after Close: %v", err)
	}
}

func TestNew_RejectsBadConfig(t *testing.T) {
	sites := newSites(t, 2)
	s := sites[0]
	base := func() Config {
		return Config{Committee: "cold-1", Identity: s.Identity, HPKEKey: s.HPKE, Store: s.Store, Peers: []Peer{sites[1].peer()}}
	}
	for name, f := range map[string]func(*Config){
		"committee with capitals": func(c *Config) { c.Committee = "Cold" },
		"empty committee":         func(c *Config) { c.Committee = "" },
		"no identity":             func(c *Config) { c.Identity = nil },
		"no HPKE key":             func(c *Config) { c.HPKEKey = nil },
		"no store":                func(c *Config) { c.Store = nil },
		"no peers":                func(c *Config) { c.Peers = []Peer{s.peer()} },
		"peer twice":              func(c *Config) { c.Peers = append(c.Peers, sites[1].peer()) },
		"peer without HPKE key":   func(c *Config) { c.Peers = []Peer{{Identity: sites[1].Identity.PublicKey()}} },
		"TTL over the maximum":    func(c *Config) { c.TTL = MaxTTL + time.Hour },
		"negative queue":          func(c *Config) { c.MaxQueued = -1 },
		"export bound too small":  func(c *Config) { c.MaxExportSize = MinExportSize - 1 },
		"export bound too large":  func(c *Config) { c.MaxExportSize = MaxBundleSize + 1 },
	} {
		cfg := base()
		f(&cfg)
		if _, err := New(context.Background(), cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
}

// TestExport_RespectsMaxExportSize: with a small MaxExportSize, the queued
// messages leave in several bundles, each within the bound, and all of
// them arrive in order.
func TestExport_RespectsMaxExportSize(t *testing.T) {
	sites := newSites(t, 2)
	a := newNet(t, sites[0], sites, func(c *Config) { c.MaxExportSize = MinExportSize })
	b := newNet(t, sites[1], sites)
	ctx := context.Background()
	big := strings.Repeat("x", tss.MaxPayloadSize-1024)
	for i := range 3 {
		if err := a.Send(ctx, msg(a, byte(i+1), 1, big, b.Self())); err != nil {
			t.Fatal(err)
		}
	}
	var got []byte
	for n := 0; a.Pending(b.Self()) > 0; n++ {
		if n == 3 {
			t.Fatalf("3 messages of %d bytes took more than 3 bundles", len(big))
		}
		bd, err := a.Export(ctx, b.Self())
		if err != nil {
			t.Fatal(err)
		}
		if len(bd) > MinExportSize {
			t.Fatalf("bundle of %d bytes, over MaxExportSize %d", len(bd), MinExportSize)
		}
		if _, err := b.Import(ctx, bd); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		m, err := b.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m.Session[0])
	}
	if !bytes.Equal(got, []byte{1, 2, 3}) {
		t.Fatalf("sessions arrived as %v, want 1, 2, 3", got)
	}
}
