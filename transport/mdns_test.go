package transport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"testing"
)

// TestMDNS_FindsCommitteePeers: two parties configured with peer IDs only
// find each other's addresses by mDNS and exchange a message.
func TestMDNS_FindsCommitteePeers(t *testing.T) {
	if !haveMulticastInterface() {
		t.Skip("no up, non-loopback interface with multicast: mDNS cannot run here")
	}
	var suffix [4]byte
	rand.Read(suffix[:])
	service := "_kq-" + hex.EncodeToString(suffix[:]) + "._udp" // RFC 6335: at most 15 characters
	ss := signers(t, 2)
	peers := committee(t, ss) // IDs only, no addresses
	var nets []*Network
	for _, s := range ss {
		n, err := New(Config{Identity: s, Peers: peers, ListenAddrs: []string{"/ip4/0.0.0.0/tcp/0"},
			MDNS: true, MDNSServiceName: service, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nets = append(nets, n)
	}
	a, b := nets[0], nets[1]
	eventually(t, "mDNS tells a where b is", func() bool { return len(a.host.Peerstore().Addrs(b.PeerID())) > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), waitTest)
	defer cancel()
	if err := sendUntilDelivered(ctx, a, b, message(a, 1, "found you", b)); err != nil {
		t.Fatal(err)
	}
}

func haveMulticastInterface() bool {
	ifs, err := net.Interfaces()
	if err != nil {
		return false
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp != 0 && i.Flags&net.FlagMulticast != 0 && i.Flags&net.FlagLoopback == 0 {
			return true
		}
	}
	return false
}
