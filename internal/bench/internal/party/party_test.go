package party

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/transport/memnet"
	"github.com/keyquorum/keyquorum/tss"
)

func TestParseStatus(t *testing.T) {
	status := "Name:\tkqbenchparty\nVmPeak:\t  900000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40960 kB\nThreads:\t12\n"
	peak, cur, err := ParseStatus(status)
	if err != nil || peak != 51234 || cur != 40960 {
		t.Errorf("ParseStatus = %d, %d, %v; want 51234, 40960, nil", peak, cur, err)
	}
	for _, bad := range []string{"VmRSS:\t1 kB\n", "VmHWM:\t1 MB\nVmRSS:\t1 kB\n", "VmHWM:\tx kB\nVmRSS:\t1 kB\n"} {
		if _, _, err := ParseStatus(bad); err == nil {
			t.Errorf("ParseStatus(%q) accepted it", bad)
		}
	}
}

func TestDigest_DependsOnSeedAndIndex(t *testing.T) {
	a, b, c := Digest("online", 1), Digest("online", 2), Digest("gg18", 1)
	if len(a) != 32 || bytes.Equal(a, b) || bytes.Equal(a, c) || !bytes.Equal(a, Digest("online", 1)) {
		t.Error("digests must be 32 bytes, deterministic, and differ by seed and index")
	}
}

func TestDelay_HoldsMessagesHalfTheRTTInOrder(t *testing.T) {
	hub := memnet.NewHub(0)
	from, err := hub.Join("a")
	if err != nil {
		t.Fatal(err)
	}
	defer from.Close()
	to, err := hub.Join("b")
	if err != nil {
		t.Fatal(err)
	}
	defer to.Close()
	d := NewDelay(to)
	defer d.Close()
	const rtt = 60 * time.Millisecond
	d.SetRTT(rtt)
	if d.RTT() != rtt {
		t.Fatalf("RTT() = %v", d.RTT())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sent := time.Now()
	for round := uint32(1); round <= 3; round++ {
		msg := &tss.Message{Type: tss.MsgProtocol, From: "a", To: []tss.PartyID{"b"}, Round: round, Payload: []byte{byte(round)}}
		if err := from.Send(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	for round := uint32(1); round <= 3; round++ {
		msg, err := d.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Round != round {
			t.Fatalf("received round %d, want %d: order lost", msg.Round, round)
		}
		if held := time.Since(sent); held < rtt/2 {
			t.Fatalf("message of round %d delivered after %v, before RTT/2 = %v", round, held, rtt/2)
		}
	}
	// A cancelled receive returns the context's error.
	short, cancelShort := context.WithCancel(ctx)
	cancelShort()
	if _, err := d.Receive(short); err != context.Canceled {
		t.Errorf("Receive on a cancelled context: %v", err)
	}
}
