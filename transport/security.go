package transport

import (
	"context"
	"crypto/tls"
	"net"

	lcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/sec"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/quic-go/quic-go"

	"github.com/keyquorum/keyquorum/tss"
)

// ConnSecurity describes how a connection to a peer is secured.
type ConnSecurity struct {
	// Transport is the libp2p transport: "tcp" or "quic-v1".
	Transport string
	// Protocol is the security protocol: SecurityTLS (always for QUIC) or
	// SecurityNoise.
	Protocol SecurityProtocol
	// TLSVersion is the negotiated TLS version (tls.VersionTLS13), or 0 for
	// Noise.
	TLSVersion uint16
	// KeyExchange names the key exchange group, as crypto/tls prints it
	// ("X25519MLKEM768", "X25519", ...). Noise always uses "X25519".
	KeyExchange string
	// PostQuantum reports whether the key exchange is a hybrid
	// post-quantum one.
	PostQuantum bool
}

// postQuantumGroups are the hybrid ML-KEM groups of Go's crypto/tls.
var postQuantumGroups = map[tls.CurveID]bool{
	tls.X25519MLKEM768:     true,
	tls.SecP256r1MLKEM768:  true,
	tls.SecP384r1MLKEM1024: true,
}

func tlsSecurity(transport string, st tls.ConnectionState) ConnSecurity {
	return ConnSecurity{
		Transport:   transport,
		Protocol:    SecurityTLS,
		TLSVersion:  st.Version,
		KeyExchange: st.CurveID.String(),
		PostQuantum: postQuantumGroups[st.CurveID],
	}
}

// observedTLS is libp2p's TLS security transport (p2p/security/tls) with
// one addition: after a handshake with a committee peer it records the
// negotiated TLS state, which libp2p's network.Conn does not expose for TCP
// connections. Everything else, including the handshake, is libp2p's.
type observedTLS struct {
	*libp2ptls.Transport
	n *Network
}

var _ sec.SecureTransport = (*observedTLS)(nil)

// newObservedTLS returns the constructor libp2p.Security calls; its
// parameters are the ones libp2ptls.New takes, supplied by libp2p.
func (n *Network) newObservedTLS() func(protocol.ID, lcrypto.PrivKey, []tptu.StreamMuxer) (*observedTLS, error) {
	return func(id protocol.ID, key lcrypto.PrivKey, muxers []tptu.StreamMuxer) (*observedTLS, error) {
		t, err := libp2ptls.New(id, key, muxers)
		if err != nil {
			return nil, err
		}
		return &observedTLS{Transport: t, n: n}, nil
	}
}

// SecureInbound runs libp2p's TLS handshake as the server and records its
// result.
func (t *observedTLS) SecureInbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	c, err := t.Transport.SecureInbound(ctx, insecure, p)
	if err == nil {
		t.n.observeTLS(c)
	}
	return c, err
}

// SecureOutbound runs libp2p's TLS handshake as the client and records its
// result.
func (t *observedTLS) SecureOutbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	c, err := t.Transport.SecureOutbound(ctx, insecure, p)
	if err == nil {
		t.n.observeTLS(c)
	}
	return c, err
}

// observeTLS keeps the TLS state of a fresh TCP connection until the gater
// sees the upgraded connection (InterceptUpgraded). Only committee peers
// are recorded, so strangers cannot grow the map.
func (n *Network) observeTLS(c sec.SecureConn) {
	p := c.RemotePeer()
	if !n.inCommittee(p) {
		return
	}
	// libp2ptls's connection embeds *tls.Conn (p2p/security/tls/conn.go).
	tc, ok := c.(interface{ ConnectionState() tls.ConnectionState })
	if !ok {
		return
	}
	n.secMu.Lock()
	n.pendingTLS[p] = tc.ConnectionState()
	n.secMu.Unlock()
}

// securityOf describes an upgraded connection; ok is false when it cannot
// tell (which RequirePostQuantum treats as not post-quantum).
func (n *Network) securityOf(c network.Conn) (ConnSecurity, bool) {
	st := c.ConnState()
	var qc *quic.Conn
	switch {
	case c.As(&qc):
		return tlsSecurity(st.Transport, qc.ConnectionState().TLS), true
	case st.Security == libp2ptls.ID:
		n.secMu.Lock()
		ts, ok := n.pendingTLS[c.RemotePeer()]
		delete(n.pendingTLS, c.RemotePeer())
		n.secMu.Unlock()
		if !ok {
			return ConnSecurity{Transport: st.Transport, Protocol: SecurityTLS}, false
		}
		return tlsSecurity(st.Transport, ts), true
	case st.Security == noise.ID:
		// p2p/security/noise/handshake.go: XX with DH25519 only.
		return ConnSecurity{Transport: st.Transport, Protocol: SecurityNoise, KeyExchange: "X25519"}, true
	}
	return ConnSecurity{Transport: st.Transport}, false
}

// ConnSecurity returns how the most recent connection with party was
// secured, or false when no connection has been made yet.
func (n *Network) ConnSecurity(party tss.PartyID) (ConnSecurity, bool) {
	id, err := peer.Decode(string(party))
	if err != nil {
		return ConnSecurity{}, false
	}
	n.secMu.Lock()
	defer n.secMu.Unlock()
	s, ok := n.security[id]
	return s, ok
}
