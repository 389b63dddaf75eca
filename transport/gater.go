package transport

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// gater admits only committee peers. The check that matters is
// InterceptSecured: it is the first hook where the remote peer ID has been
// authenticated by the security handshake, it runs for inbound and
// outbound connections, and it runs before the stream multiplexer, so a
// refused peer never gets to open a stream (p2p/net/upgrader/upgrader.go
// for TCP, p2p/transport/quic/listener.go and transport.go for QUIC).
type gater struct{ n *Network }

// InterceptPeerDial refuses to dial peers outside the committee.
func (g gater) InterceptPeerDial(p peer.ID) bool { return g.n.inCommittee(p) }

// InterceptAddrDial allows every address; the peer was checked already.
func (g gater) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return true }

// InterceptAccept allows every inbound connection to reach the security
// handshake; the peer is not known before it.
func (g gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured admits an authenticated connection only from or to a
// committee peer.
func (g gater) InterceptSecured(dir network.Direction, p peer.ID, addrs network.ConnMultiaddrs) bool {
	if g.n.inCommittee(p) {
		return true
	}
	g.n.stats.connsRefused.Add(1)
	if suppressed, ok := g.n.refusals.allow(time.Now()); ok {
		g.n.log.Info("refused connection from a peer outside the committee: if it is a committee member, its peer ID is missing from the peer file or mistyped",
			"peer", p.String(), "direction", dir.String(), "remote_addr", addrs.RemoteMultiaddr().String(),
			"refused_since_last_line", suppressed)
	}
	return false
}

// refusalLogEvery is the least time between two log lines about refused
// connections: a stranger that redials in a loop must not flood the log.
const refusalLogEvery = 10 * time.Second

// refusalLog lets one refusal in refusalLogEvery be logged and counts the
// others.
type refusalLog struct {
	mu         sync.Mutex
	every      time.Duration // refusalLogEvery unless a test sets it
	last       time.Time
	suppressed uint64
}

// allow reports whether a refusal at now may be logged, and how many were
// not logged since the last line.
func (r *refusalLog) allow(now time.Time) (suppressed uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	every := r.every
	if every == 0 {
		every = refusalLogEvery
	}
	if !r.last.IsZero() && now.Sub(r.last) < every {
		r.suppressed++
		return 0, false
	}
	suppressed, r.suppressed, r.last = r.suppressed, 0, now
	return suppressed, true
}

// InterceptUpgraded records how the connection is secured and, with
// RequirePostQuantum, refuses one without a post-quantum key exchange.
func (g gater) InterceptUpgraded(c network.Conn) (bool, control.DisconnectReason) {
	n := g.n
	info, known := n.securityOf(c)
	if n.cfg.RequirePostQuantum && !(known && info.PostQuantum) {
		n.stats.connsRefused.Add(1)
		n.log.Warn("refused connection without post-quantum key exchange",
			"peer", c.RemotePeer().String(), "transport", info.Transport, "key_exchange", info.KeyExchange)
		return false, 0
	}
	if known {
		n.secMu.Lock()
		n.security[c.RemotePeer()] = info
		n.secMu.Unlock()
		n.log.Debug("connection secured", "peer", c.RemotePeer().String(), "transport", info.Transport,
			"security", string(info.Protocol), "key_exchange", info.KeyExchange, "post_quantum", info.PostQuantum)
	}
	return true, 0
}
