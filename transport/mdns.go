package transport

import (
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
)

// startMDNS advertises this host and learns committee peers' addresses by
// multicast DNS under the configured (private) service name. Peers outside
// the committee are ignored, and discovery only supplies addresses: the
// gater and the security handshake still decide who may connect.
func (n *Network) startMDNS() error {
	s := mdns.NewMdnsService(n.host, n.cfg.MDNSServiceName, mdnsNotifee{n})
	if err := s.Start(); err != nil {
		return err
	}
	n.mdns = s
	return nil
}

type mdnsNotifee struct{ n *Network }

// HandlePeerFound runs in a goroutine the mDNS service starts per record.
func (m mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	n := m.n
	defer func() {
		if r := recover(); r != nil {
			n.recovered("mDNS discovery", r)
		}
	}()
	if !n.inCommittee(ai.ID) || n.ctx.Err() != nil {
		return
	}
	var addrs = ai.Addrs[:0:0]
	for _, a := range ai.Addrs {
		if a, err := checkPeerAddr(ai.ID, a); err == nil {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return
	}
	// mDNS answers are unauthenticated; an address only says where to
	// dial, and the handshake proves who answers. They expire so that a
	// stale answer is not dialed forever.
	n.host.Peerstore().AddAddrs(ai.ID, addrs, peerstore.AddressTTL)
	n.log.Debug("mDNS found committee peer", "peer", ai.ID.String(), "addrs", len(addrs))
}
