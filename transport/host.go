package transport

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"net"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/quic-go/quic-go"
	"go.uber.org/fx"
)

// hostOptions returns the libp2p options of a keyquorum host. Every choice
// that matters for an identity key that cannot be exported is explicit:
//
//   - Transports are TCP and QUIC only. libp2p's default set includes
//     WebRTC and WebTransport, whose certificates are derived from the
//     private key's bytes (p2p/transport/webrtc/cert.go,
//     p2p/transport/webtransport/crypto.go).
//   - The QUIC connection manager is built here (libp2p.QUICReuse), so
//     libp2p does not derive its keys from Raw() (config/quic.go).
//   - No relay, no metrics registration, no ping service, no observed
//     address discovery: peers are static and known.
func (n *Network) hostOptions() ([]libp2p.Option, error) {
	srk, tok, err := quicKeys(n.cfg.QUICSecret)
	if err != nil {
		return nil, err
	}
	opts := []libp2p.Option{
		libp2p.Identity(n.hostKey),
		libp2p.ListenAddrStrings(n.cfg.ListenAddrs...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.QUICReuse(func(lc fx.Lifecycle, rcmgr network.ResourceManager) (*quicreuse.ConnManager, error) {
			return newQUICConnManager(lc, rcmgr, srk, tok)
		}),
		libp2p.ConnectionGater(gater{n}),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.Ping(false),
		libp2p.DisableIdentifyAddressDiscovery(),
		libp2p.UserAgent("keyquorum"),
	}
	for _, s := range n.cfg.Security {
		switch s {
		case SecurityTLS:
			opts = append(opts, libp2p.Security(libp2ptls.ID, n.newObservedTLS()))
		case SecurityNoise:
			opts = append(opts, libp2p.Security(noise.ID, noise.New))
		}
	}
	return opts, nil
}

// quicKeys returns QUIC's stateless reset key and token key: derived from
// secret with HKDF-SHA256 when it is set, random otherwise.
func quicKeys(secret []byte) (quic.StatelessResetKey, quic.TokenGeneratorKey, error) {
	var srk quic.StatelessResetKey
	var tok quic.TokenGeneratorKey
	if len(secret) == 0 {
		rand.Read(srk[:])
		rand.Read(tok[:])
		return srk, tok, nil
	}
	k, err := hkdf.Key(sha256.New, secret, nil, "keyquorum quic stateless reset key", len(srk))
	if err != nil {
		return srk, tok, err
	}
	copy(srk[:], k)
	k, err = hkdf.Key(sha256.New, secret, nil, "keyquorum quic token generator key", len(tok))
	if err != nil {
		return srk, tok, err
	}
	copy(tok[:], k)
	return srk, tok, nil
}

// newQUICConnManager builds the QUIC connection manager as libp2p's default
// does (config/config.go, the provider used when QUICReuse is not set),
// including resource-manager accounting of inbound connections before their
// handshake and source-address verification under load, but with keys that
// do not come from the identity key.
func newQUICConnManager(lc fx.Lifecycle, rcmgr network.ResourceManager, srk quic.StatelessResetKey, tok quic.TokenGeneratorKey) (*quicreuse.ConnManager, error) {
	cm, err := quicreuse.NewConnManager(srk, tok,
		quicreuse.ConnContext(func(ctx context.Context, info *quic.ClientInfo) (context.Context, error) {
			addr, err := quicreuse.ToQuicMultiaddr(info.RemoteAddr, quic.Version1)
			if err != nil {
				addr = nil // let the resource manager decide, as libp2p does
			}
			scope, err := rcmgr.OpenConnection(network.DirInbound, false, addr)
			if err != nil {
				return ctx, err
			}
			ctx = network.WithConnManagementScope(ctx, scope)
			context.AfterFunc(ctx, scope.Done)
			return ctx, nil
		}),
		quicreuse.VerifySourceAddress(func(addr net.Addr) bool { return rcmgr.VerifySourceAddress(addr) }),
	)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(cm.Close))
	return cm, nil
}
