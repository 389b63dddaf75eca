package transport

import (
	"crypto"
	"fmt"
	"log/slog"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

// SecurityProtocol names a libp2p security protocol for TCP connections.
type SecurityProtocol string

// Security protocols. QUIC connections always use TLS 1.3, whatever
// [Config.Security] says.
const (
	// SecurityTLS is libp2p's TLS 1.3 handshake (/tls/1.0.0). The identity
	// key signs once at start-up; Go 1.26 negotiates the hybrid
	// post-quantum key exchange X25519MLKEM768 with peers that offer it.
	// It is the default.
	SecurityTLS SecurityProtocol = "tls"
	// SecurityNoise is libp2p's Noise XX handshake (/noise) over X25519.
	// The identity key signs on every handshake, and a responder signs
	// before it learns who the initiator is, so anyone who can reach the
	// port can make the HSM sign as often as it connects. The key exchange
	// is not post-quantum. It is offered only when Config.Security lists
	// it.
	SecurityNoise SecurityProtocol = "noise"
)

// Defaults used by [New] for zero [Config] fields.
const (
	DefaultDialTimeout       = 10 * time.Second
	DefaultSendTimeout       = 30 * time.Second
	DefaultBackoffMin        = 100 * time.Millisecond
	DefaultBackoffMax        = 5 * time.Second
	DefaultWriteTimeout      = 10 * time.Second
	DefaultSendQueueSize     = 64
	DefaultInboxSize         = 256
	DefaultInboxBytes        = 16 << 20
	DefaultMaxInboundStreams = 4
	DefaultMDNSServiceName   = "_keyquorum-tss._udp"
)

// DefaultListenAddrs are the listen addresses used when [Config.ListenAddrs] is
// empty: TCP and QUIC on port 4001 of every IPv4 interface.
var DefaultListenAddrs = []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}

// Config configures a [Network]. Only Identity and Peers are required; every
// other field has the default named in its comment.
type Config struct {
	// Identity is the party's identity key, normally the HSM-resident
	// P-256 key (hsmshare's identity implements crypto.Signer). Its public
	// key determines the party's peer ID. Required.
	Identity crypto.Signer

	// Peers lists the committee. Only these peers may connect; everyone
	// else is refused by the connection gater after the security handshake
	// and before any stream opens. The list may include this party's own
	// entry, so all sites can share one peer file (LoadPeerFile). Required:
	// at least one peer other than this party.
	Peers []Peer

	// ListenAddrs are the multiaddrs to listen on. Default:
	// DefaultListenAddrs. Use /ip4/127.0.0.1/tcp/0 style addresses in tests
	// and read the chosen ports with Network.Addrs.
	ListenAddrs []string

	// Security lists the security protocols offered on TCP connections, in
	// order of preference. Default: TLS only. Listing SecurityNoise as
	// well lets peers that speak only Noise connect, at the cost of one
	// identity-key signature per incoming handshake, made before the
	// initiator is authenticated.
	Security []SecurityProtocol

	// RequirePostQuantum refuses every connection whose key exchange is
	// not a hybrid post-quantum one (X25519MLKEM768, SecP256r1MLKEM768 or
	// SecP384r1MLKEM1024). Noise cannot be combined with it. Default: off,
	// which still negotiates X25519MLKEM768 with every peer that offers it.
	RequirePostQuantum bool

	// QUICSecret, when set (at least 32 bytes), derives the QUIC stateless
	// reset key and address-validation token key with HKDF-SHA256. Use the
	// same secret across restarts (for example one sealed by the HSM) so
	// that a restarted party's peers learn at once that their old QUIC
	// connection is gone. Default: random keys at each start; peers then
	// notice a restart only when the old connection idles out (about 30 s).
	// It protects no message; it is not the identity key.
	QUICSecret []byte

	// MDNS enables discovery of committee peers' addresses on the local
	// network by multicast DNS, for demos. Discovered peers outside the
	// committee are ignored. Default: off.
	MDNS bool
	// MDNSServiceName is the mDNS service name. Default:
	// DefaultMDNSServiceName, distinct from IPFS's "_p2p._udp".
	MDNSServiceName string

	// DialTimeout bounds one attempt to connect to a peer and open a
	// stream. Default: DefaultDialTimeout.
	DialTimeout time.Duration
	// SendTimeout bounds how long Send waits for one recipient (reconnect
	// attempts, a full queue) when the caller's context has a later or no
	// deadline. Default: DefaultSendTimeout.
	SendTimeout time.Duration
	// BackoffMin and BackoffMax bound the delay between reconnect attempts
	// to one peer; the delay doubles after every failure (with jitter) and
	// resets after a success. Defaults: DefaultBackoffMin,
	// DefaultBackoffMax.
	BackoffMin, BackoffMax time.Duration

	// WriteTimeout bounds the writing of one envelope to a peer's stream.
	// A peer that stops reading for that long has its stream reset (what
	// it had not read yet is lost, as if it had crashed) and holds up
	// nothing but its own messages. Default: DefaultWriteTimeout.
	WriteTimeout time.Duration

	// SendQueueSize is the number of messages waiting for one peer's stream
	// before Send blocks. Default: DefaultSendQueueSize.
	SendQueueSize int
	// InboxSize is the number of received messages from one peer waiting
	// for Receive before the network stops reading from that peer; each
	// peer has its own part of the inbox and Receive serves them in turn,
	// so a peer that floods only waits for itself. Default:
	// DefaultInboxSize.
	InboxSize int
	// InboxBytes bounds the bytes of one peer's envelopes waiting for
	// Receive; it must be at least MaxEnvelopeSize. Default:
	// DefaultInboxBytes.
	InboxBytes int
	// MaxInboundStreams is the number of concurrent inbound streams one
	// peer may hold open (a well-behaved peer uses one). Further streams
	// are reset. Default: DefaultMaxInboundStreams.
	MaxInboundStreams int

	// Logger receives structured logs (peer IDs, reasons, counts, never
	// payloads). Default: no logging.
	Logger *slog.Logger
}

// withDefaults returns a copy of c with defaults filled in, or an error
// naming the first unusable setting.
func (c Config) withDefaults() (Config, error) {
	bad := func(format string, args ...any) (Config, error) {
		return Config{}, fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if c.Identity == nil {
		return bad("Identity is required")
	}
	if len(c.ListenAddrs) == 0 {
		c.ListenAddrs = DefaultListenAddrs
	}
	for _, s := range c.ListenAddrs {
		if _, err := ma.NewMultiaddr(s); err != nil {
			return bad("listen address %q does not parse: %v", s, err)
		}
	}
	if len(c.Security) == 0 {
		c.Security = []SecurityProtocol{SecurityTLS}
	}
	seen := map[SecurityProtocol]bool{}
	for _, s := range c.Security {
		switch {
		case s != SecurityTLS && s != SecurityNoise:
			return bad("unknown security protocol %q (want %q or %q)", s, SecurityTLS, SecurityNoise)
		case seen[s]:
			return bad("security protocol %q listed twice", s)
		case s == SecurityNoise && c.RequirePostQuantum:
			return bad("Noise has no post-quantum key exchange; remove it or turn off RequirePostQuantum")
		}
		seen[s] = true
	}
	if len(c.QUICSecret) > 0 && len(c.QUICSecret) < 32 {
		return bad("QUICSecret has %d bytes, want at least 32", len(c.QUICSecret))
	}
	if c.MDNSServiceName == "" {
		c.MDNSServiceName = DefaultMDNSServiceName
	}
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"DialTimeout", &c.DialTimeout, DefaultDialTimeout},
		{"SendTimeout", &c.SendTimeout, DefaultSendTimeout},
		{"BackoffMin", &c.BackoffMin, DefaultBackoffMin},
		{"BackoffMax", &c.BackoffMax, DefaultBackoffMax},
		{"WriteTimeout", &c.WriteTimeout, DefaultWriteTimeout},
	}
	for _, d := range durations {
		if *d.v < 0 {
			return bad("%s is negative", d.name)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.BackoffMax < c.BackoffMin {
		return bad("BackoffMax %v is below BackoffMin %v", c.BackoffMax, c.BackoffMin)
	}
	sizes := []struct {
		name string
		v    *int
		def  int
	}{
		{"SendQueueSize", &c.SendQueueSize, DefaultSendQueueSize},
		{"InboxSize", &c.InboxSize, DefaultInboxSize},
		{"InboxBytes", &c.InboxBytes, DefaultInboxBytes},
		{"MaxInboundStreams", &c.MaxInboundStreams, DefaultMaxInboundStreams},
	}
	for _, s := range sizes {
		if *s.v < 0 {
			return bad("%s is negative", s.name)
		}
		if *s.v == 0 {
			*s.v = s.def
		}
	}
	if c.InboxBytes < MaxEnvelopeSize {
		return bad("InboxBytes %d is below MaxEnvelopeSize %d", c.InboxBytes, MaxEnvelopeSize)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}
