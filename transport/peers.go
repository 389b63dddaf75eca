package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/keyquorum/keyquorum/tss"
)

// MaxPeerFileSize is the largest peer file [LoadPeerFile] reads.
const MaxPeerFileSize = 1 << 20

// Peer is one member of the committee: its peer ID and the addresses it
// can be dialed at.
type Peer struct {
	// ID is the peer's libp2p peer ID, derived from its identity key.
	ID peer.ID
	// Addrs are the peer's listen addresses without a /p2p component, for
	// example /ip4/192.0.2.7/tcp/4001 and /ip4/192.0.2.7/udp/4001/quic-v1.
	// It may be empty for a peer that only dials in, or whose addresses
	// are learned by mDNS.
	Addrs []ma.Multiaddr
	// Name is what people call the site ("site-a", "Zurich vault"), shown
	// beside its peer ID; optional, at most MaxPeerNameLen bytes of
	// printable text. It is a label for display only: nothing
	// authenticates it, and the transport never uses it.
	Name string
}

// MaxPeerNameLen bounds a peer's Name in a peer file.
const MaxPeerNameLen = 64

// PartyID returns the peer's tss party ID.
func (p Peer) PartyID() tss.PartyID { return PartyIDFromPeer(p.ID) }

// peerJSON is one entry of a peer file.
type peerJSON struct {
	PeerID string   `json:"peer_id"`
	Name   string   `json:"name,omitempty"`
	Addrs  []string `json:"addrs"`
}

// MarshalJSON encodes p as a peer file entry.
func (p Peer) MarshalJSON() ([]byte, error) {
	e := peerJSON{PeerID: p.ID.String(), Name: p.Name, Addrs: make([]string, len(p.Addrs))}
	for i, a := range p.Addrs {
		e.Addrs[i] = a.String()
	}
	return json.Marshal(e)
}

// LoadPeerFile reads a peer file (see [ParsePeers]) of at most
// [MaxPeerFileSize] bytes.
func LoadPeerFile(path string) ([]Peer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("transport: open peer file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxPeerFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("transport: read peer file %s: %w", path, err)
	}
	if len(data) > MaxPeerFileSize {
		return nil, fmt.Errorf("%w: peer file %s is larger than %d bytes", ErrInvalidConfig, path, MaxPeerFileSize)
	}
	peers, err := ParsePeers(data)
	if err != nil {
		return nil, fmt.Errorf("peer file %s: %w", path, err)
	}
	return peers, nil
}

// ParsePeers parses a peer file: a JSON array with one object per committee
// member,
//
//	[
//	  {"peer_id": "QmYy…", "name": "site-a", "addrs": ["/ip4/192.0.2.7/tcp/4001", "/ip4/192.0.2.7/udp/4001/quic-v1"]},
//	  {"peer_id": "QmZk…", "addrs": ["/dns4/site-b.example/tcp/4001"]}
//	]
//
// Every site can use the same file: a [Network] ignores its own entry when
// dialing. "name" is optional (see [Peer.Name]). Unknown keys, a peer ID that does not parse, a peer listed twice,
// an address that does not parse, names another peer in a /p2p component,
// or uses a transport other than TCP or QUIC v1, and a name that is too
// long or not printable are errors wrapping
// [ErrInvalidConfig]. An address's /p2p suffix naming the entry's own peer is
// removed.
func ParsePeers(data []byte) ([]Peer, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var entries []peerJSON
	if err := dec.Decode(&entries); err != nil {
		return nil, fmt.Errorf("%w: peer list is not a JSON array of {\"peer_id\", \"addrs\"} objects: %v", ErrInvalidConfig, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the peer list", ErrInvalidConfig)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w: peer list is empty", ErrInvalidConfig)
	}
	peers := make([]Peer, 0, len(entries))
	seen := make(map[peer.ID]int, len(entries))
	for i, e := range entries {
		if e.PeerID == "" {
			return nil, fmt.Errorf("%w: peer %d has no peer_id", ErrInvalidConfig, i+1)
		}
		id, err := peer.Decode(e.PeerID)
		if err != nil {
			return nil, fmt.Errorf("%w: peer %d: peer_id %q does not parse: %v", ErrInvalidConfig, i+1, e.PeerID, err)
		}
		if j, dup := seen[id]; dup {
			return nil, fmt.Errorf("%w: peer %s is listed twice (entries %d and %d)", ErrInvalidConfig, id, j+1, i+1)
		}
		seen[id] = i
		if err := checkPeerName(e.Name); err != nil {
			return nil, fmt.Errorf("%w: peer %s: name %q: %v", ErrInvalidConfig, id, e.Name, err)
		}
		p := Peer{ID: id, Name: e.Name}
		for _, s := range e.Addrs {
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				return nil, fmt.Errorf("%w: peer %s: address %q does not parse: %v", ErrInvalidConfig, id, s, err)
			}
			a, err = checkPeerAddr(id, a)
			if err != nil {
				return nil, fmt.Errorf("%w: peer %s: address %q: %v", ErrInvalidConfig, id, s, err)
			}
			p.Addrs = append(p.Addrs, a)
		}
		peers = append(peers, p)
	}
	return peers, nil
}

// checkPeerName accepts an empty name or up to MaxPeerNameLen bytes of
// printable UTF-8 without control characters, so that a name cannot
// break a log line or a status table.
func checkPeerName(name string) error {
	if len(name) > MaxPeerNameLen {
		return fmt.Errorf("longer than %d bytes", MaxPeerNameLen)
	}
	if !utf8.ValidString(name) {
		return errors.New("not UTF-8")
	}
	if strings.TrimSpace(name) != name {
		return errors.New("leading or trailing spaces")
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("holds the control or non-printing character %U", r)
		}
	}
	return nil
}

// errUnsupportedAddr explains which addresses a Network can dial.
var errUnsupportedAddr = errors.New("want /ip4, /ip6, /dns, /dns4 or /dns6, then /tcp/PORT or /udp/PORT/quic-v1")

// checkPeerAddr removes a trailing /p2p/<id> naming id itself and checks
// that the rest is an address the TCP or QUIC transport can dial.
func checkPeerAddr(id peer.ID, a ma.Multiaddr) (ma.Multiaddr, error) {
	rest, last := ma.SplitLast(a)
	if last != nil && last.Protocol().Code == ma.P_P2P {
		other, err := peer.Decode(last.Value())
		if err != nil || other != id {
			return nil, fmt.Errorf("/p2p component names %s, not the entry's peer", last.Value())
		}
		a = rest
	}
	var codes []int
	for _, c := range a {
		codes = append(codes, c.Protocol().Code)
	}
	if len(codes) < 2 {
		return nil, errUnsupportedAddr
	}
	switch codes[0] {
	case ma.P_IP4, ma.P_IP6, ma.P_DNS, ma.P_DNS4, ma.P_DNS6:
	default:
		return nil, errUnsupportedAddr
	}
	switch {
	case len(codes) == 2 && codes[1] == ma.P_TCP:
	case len(codes) == 3 && codes[1] == ma.P_UDP && codes[2] == ma.P_QUIC_V1:
	default:
		return nil, errUnsupportedAddr
	}
	return a, nil
}
