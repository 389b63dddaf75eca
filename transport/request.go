package transport

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/keyquorum/keyquorum/tss"
)

// Requests: a small request/response service beside the protocol
// messages, for exchanges that are not protocol sessions (the audit
// logs' witnessing). One stream per request: the requester writes a
// 4-byte big-endian length and the request, the responder answers with
// one status byte (0 ok, 1 error), a 4-byte length and the response or
// the error text. Only committee members reach it (the gater), each
// request and answer is bounded by MaxRequestSize, and one exchange by
// RequestTimeout.

// MaxRequestSize bounds a request and a response.
const MaxRequestSize = 1 << 20

// RequestTimeout bounds one request/response exchange.
const RequestTimeout = 30 * time.Second

// RequestHandler answers one request from committee member from. Its error
// text goes back to the requester: it must not carry secrets.
type RequestHandler func(ctx context.Context, from tss.PartyID, req []byte) ([]byte, error)

// RemoteError is an error a peer's request handler returned.
type RemoteError struct {
	// Party is the peer that answered.
	Party tss.PartyID
	// Msg is its error text.
	Msg string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("transport: %s answered: %s", e.Party, e.Msg)
}

// HandleRequests serves requests for protocol id (a libp2p protocol ID
// such as "/keyquorum/audit-witness/1") with h. A panic in h is recovered
// and answered as an error.
func (n *Network) HandleRequests(id protocol.ID, h RequestHandler) {
	n.host.SetStreamHandler(id, func(s network.Stream) {
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			s.Reset()
			return
		}
		n.wg.Add(1)
		n.mu.Unlock()
		defer n.wg.Done()
		n.serveRequest(s, h)
	})
}

func (n *Network) serveRequest(s network.Stream, h RequestHandler) {
	defer s.Close()
	from := s.Conn().RemotePeer()
	if !n.inCommittee(from) {
		s.Reset()
		return
	}
	_ = s.SetDeadline(time.Now().Add(RequestTimeout))
	req, err := readRequestFrame(s)
	if err != nil {
		s.Reset()
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, RequestTimeout)
	defer cancel()
	resp, err := func() (resp []byte, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = n.recovered("request handler", r)
			}
		}()
		return h(ctx, tss.PartyID(from.String()), req)
	}()
	status := byte(0)
	if err != nil {
		status, resp = 1, []byte(err.Error())
	}
	if len(resp) > MaxRequestSize {
		status, resp = 1, []byte("response too large")
	}
	if _, err := s.Write([]byte{status}); err != nil {
		s.Reset()
		return
	}
	if err := writeRequestFrame(s, resp); err != nil {
		s.Reset()
	}
}

// Request sends req to committee member to under protocol id and returns
// its answer. The error is a *tss.UnreachableError when to cannot be
// reached, or a *RemoteError when its handler failed.
func (n *Network) Request(ctx context.Context, to tss.PartyID, id protocol.ID, req []byte) ([]byte, error) {
	if n.isClosed() {
		return nil, ErrClosed
	}
	if len(req) > MaxRequestSize {
		return nil, fmt.Errorf("transport: request of %d bytes, at most %d", len(req), MaxRequestSize)
	}
	pid, err := PeerIDFromParty(to)
	if err != nil {
		return nil, err
	}
	if !n.inCommittee(pid) {
		return nil, fmt.Errorf("transport: request to %s: %w", to, ErrNotInCommittee)
	}
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	s, err := n.host.NewStream(network.WithForceDirectDial(ctx, "keyquorum request"), pid, id)
	if err != nil {
		return nil, &tss.UnreachableError{Parties: []tss.PartyID{to}, Err: err}
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if err := writeRequestFrame(s, req); err != nil {
		s.Reset()
		return nil, &tss.UnreachableError{Parties: []tss.PartyID{to}, Err: err}
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return nil, &tss.UnreachableError{Parties: []tss.PartyID{to}, Err: err}
	}
	var status [1]byte
	if _, err := io.ReadFull(s, status[:]); err != nil {
		s.Reset()
		return nil, &tss.UnreachableError{Parties: []tss.PartyID{to}, Err: err}
	}
	resp, err := readRequestFrame(s)
	if err != nil {
		s.Reset()
		return nil, &tss.UnreachableError{Parties: []tss.PartyID{to}, Err: err}
	}
	if status[0] != 0 {
		return nil, &RemoteError{Party: to, Msg: string(resp)}
	}
	return resp, nil
}

func writeRequestFrame(w io.Writer, b []byte) error {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

func readRequestFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxRequestSize {
		return nil, errors.New("frame too large")
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// PeerPublicKey returns the identity public key (ECDSA) of committee
// member p as its connection authenticated it, once this host has
// connected to p. It fails for a peer it has not met yet.
func (n *Network) PeerPublicKey(p tss.PartyID) (*ecdsa.PublicKey, error) {
	pid, err := PeerIDFromParty(p)
	if err != nil {
		return nil, err
	}
	if !n.inCommittee(pid) {
		return nil, fmt.Errorf("transport: public key of %s: %w", p, ErrNotInCommittee)
	}
	pk := n.host.Peerstore().PubKey(pid)
	if pk == nil {
		return nil, fmt.Errorf("transport: no public key known for %s yet", p)
	}
	if id, err := peer.IDFromPublicKey(pk); err != nil || id != pid {
		return nil, fmt.Errorf("transport: the key stored for %s does not match its peer ID", p)
	}
	raw, err := pk.Raw()
	if err != nil {
		return nil, fmt.Errorf("transport: public key of %s: %w", p, err)
	}
	parsed, err := x509.ParsePKIXPublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("transport: public key of %s: %w", p, err)
	}
	ec, ok := parsed.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("transport: public key of %s is not ECDSA", p)
	}
	return ec, nil
}
