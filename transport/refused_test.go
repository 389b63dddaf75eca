package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/keyquorum/keyquorum/tss"
)

// deadPeer returns a network whose committee has a second member that is
// reachable only at addr, with the given send timeout.
func deadPeer(t *testing.T, addr string, sendTimeout time.Duration) (*Network, tss.PartyID) {
	t.Helper()
	ss := signers(t, 2)
	peers := committee(t, ss)
	n, err := New(Config{Identity: ss[0], Peers: peers, ListenAddrs: listenTCP.addrs(), SendTimeout: sendTimeout,
		BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	other := tss.PartyID(peers[1].ID.String())
	if err := n.AddAddrs(other, ma.StringCast(addr)); err != nil {
		t.Fatal(err)
	}
	return n, other
}

func sendTo(n *Network, to tss.PartyID) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- n.Send(context.Background(), &tss.Message{Type: tss.MsgProtocol, From: n.Self(), To: []tss.PartyID{to}, Round: 1, Payload: []byte("x")})
	}()
	return done
}

// A site whose port refuses connections is down: Send says so at once
// instead of retrying for SendTimeout (here far longer than the test).
func TestSend_FailsFastWhenPeerRefuses(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now: the kernel answers with a reset
	n, other := deadPeer(t, fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port), time.Hour)
	select {
	case err := <-sendTo(n, other):
		var ue *tss.UnreachableError
		if !errors.As(err, &ue) || !slices.Equal(ue.Parties, []tss.PartyID{other}) || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("Send to a refusing peer: %v; want *tss.UnreachableError naming %s, caused by connection refused", err, other)
		}
	case <-time.After(waitTest):
		t.Fatal("Send to a peer whose port refuses still waits (for its SendTimeout of an hour)")
	}
}

// A peer that accepts the connection and never answers may be slow, not
// down: Send waits for it until SendTimeout.
func TestSend_WaitsForSilentPeer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	held := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held <- c // never read, never answered
		}
	}()
	t.Cleanup(func() {
		for len(held) > 0 {
			(<-held).Close()
		}
	})
	n, other := deadPeer(t, fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", l.Addr().(*net.TCPAddr).Port), time.Second)
	err = <-sendTo(n, other)
	var ue *tss.UnreachableError
	if !errors.As(err, &ue) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Send to a silent peer: %v; want *tss.UnreachableError after the send timeout", err)
	}
}
