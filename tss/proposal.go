package tss

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Operation names what a session does.
type Operation string

// Operations a session can run.
const (
	OpKeygen    Operation = "keygen"
	OpSign      Operation = "sign"      // classic GG18 signing
	OpReshare   Operation = "reshare"   // move a key to a new committee
	OpPresign   Operation = "presign"   // GG20 offline phase
	OpOnline    Operation = "online"    // GG20 one-round signing
	OpCommit    Operation = "commit"    // activate the shares of a confirmed reshare
	OpReconcile Operation = "reconcile" // agree which presignatures of a pool exist

	OpSchnorrKeygen Operation = "schnorr-keygen" // FROST distributed key generation
	OpSchnorrSign   Operation = "schnorr-sign"   // FROST two-round signing
)

func (o Operation) valid() bool {
	switch o {
	case OpKeygen, OpSign, OpReshare, OpPresign, OpOnline, OpCommit, OpReconcile, OpSchnorrKeygen, OpSchnorrSign:
		return true
	}
	return false
}

// proposalVersion is the version of the proposal encoding and of the session
// ID derivation.
const proposalVersion = 1

// Proposal is what an initiator asks the other parties to run. Every party
// checks a proposal itself before it joins; nobody runs what it has not
// checked.
type Proposal struct {
	// Version of the proposal format.
	Version int `json:"v"`
	// Op is the operation.
	Op Operation `json:"op"`
	// Initiator is the party that proposed the session.
	Initiator PartyID `json:"initiator"`
	// KeyID names the key (empty for keygen).
	KeyID string `json:"key_id,omitempty"`
	// Parties are the participants of the session, sorted.
	Parties []PartyID `json:"parties"`
	// Threshold is M, the number of parties required to sign, for keygen and
	// for the new committee of a reshare.
	Threshold int `json:"threshold,omitempty"`
	// NewParties is the new committee of a reshare, sorted.
	NewParties []PartyID `json:"new_parties,omitempty"`
	// OldParties are the members of the current committee that take part
	// in a reshare, sorted.
	OldParties []PartyID `json:"old_parties,omitempty"`
	// Epoch selects the share a signing session uses when it is not the
	// active one (the pending share of a reshare being confirmed); 0 means
	// the active share.
	Epoch uint64 `json:"epoch,omitempty"`
	// Payload is the operation's input: the 32-byte digest for signing, the
	// presignature IDs and digests for online signing.
	Payload []byte `json:"payload,omitempty"`
	// Path is the BIP-32 derivation path ("m/0/7"), empty for the root key.
	Path string `json:"path,omitempty"`
	// Count is the number of presignatures to make (presign only).
	Count int `json:"count,omitempty"`
	// Evidence is opaque policy evidence (for example approvals) that each
	// party's policy hook may check.
	Evidence []byte `json:"evidence,omitempty"`
	// Nonce is the initiator's 32 fresh random bytes.
	Nonce [32]byte `json:"nonce"`
}

// maxProposalSize bounds an encoded proposal.
const maxProposalSize = 1 << 20

// SessionID derives the session ID: SHA-256 over a domain tag and every
// field of the proposal in a fixed, length-prefixed order. Two proposals
// that differ in anything a party checks have different session IDs.
func (p *Proposal) SessionID() SessionID {
	h := sha256.New()
	h.Write([]byte("keyquorum/session/v1"))
	var b [8]byte
	put := func(v uint64) {
		binary.BigEndian.PutUint64(b[:], v)
		h.Write(b[:])
	}
	put(uint64(p.Version))
	writeLenPrefixed(h, []byte(p.Op))
	writeLenPrefixed(h, []byte(p.Initiator))
	writeLenPrefixed(h, []byte(p.KeyID))
	put(uint64(len(p.Parties)))
	for _, q := range p.Parties {
		writeLenPrefixed(h, []byte(q))
	}
	put(uint64(p.Threshold))
	put(uint64(len(p.NewParties)))
	for _, q := range p.NewParties {
		writeLenPrefixed(h, []byte(q))
	}
	put(uint64(len(p.OldParties)))
	for _, q := range p.OldParties {
		writeLenPrefixed(h, []byte(q))
	}
	put(p.Epoch)
	writeLenPrefixed(h, p.Payload)
	writeLenPrefixed(h, []byte(p.Path))
	put(uint64(p.Count))
	writeLenPrefixed(h, p.Evidence)
	h.Write(p.Nonce[:])
	var id SessionID
	h.Sum(id[:0])
	return id
}

// validate checks the proposal's shape; operation-specific checks happen
// where the party has the state to make them.
func (p *Proposal) validate() error {
	if p.Version != proposalVersion {
		return fmt.Errorf("tss: proposal version %d is not supported (want %d)", p.Version, proposalVersion)
	}
	if !p.Op.valid() {
		return fmt.Errorf("tss: proposal for unknown operation %q", p.Op)
	}
	if err := p.Initiator.Validate(); err != nil {
		return err
	}
	if err := validPartySet(p.Parties); err != nil {
		return err
	}
	if !slices.IsSorted(p.Parties) {
		return errors.New("tss: proposal parties are not sorted")
	}
	if !containsParty(p.Parties, p.Initiator) {
		return errors.New("tss: initiator is not a party of its own proposal")
	}
	for _, set := range [][]PartyID{p.NewParties, p.OldParties} {
		if err := validPartySet(set); err != nil {
			return err
		}
		if !slices.IsSorted(set) {
			return errors.New("tss: proposal party lists are not sorted")
		}
		for _, q := range set {
			if !containsParty(p.Parties, q) {
				return fmt.Errorf("tss: %s is in a committee list but not a party of the session", q)
			}
		}
	}
	if p.KeyID != "" {
		if err := validKeyID(p.KeyID); err != nil {
			return err
		}
	}
	return nil
}

func encodeProposal(p *Proposal) ([]byte, error) { return json.Marshal(p) }

// ParseProposal decodes the payload of a [MsgPropose] message and checks
// its shape, as a party does before it looks at a proposal: for tools that
// show an operator what a session asks (an offline bundle's contents)
// without joining it. It checks nothing that needs the party's state.
func ParseProposal(b []byte) (*Proposal, error) { return decodeProposal(b) }

func decodeProposal(b []byte) (*Proposal, error) {
	if len(b) > maxProposalSize {
		return nil, errors.New("tss: proposal too large")
	}
	var p Proposal
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("tss: malformed proposal: %w", err)
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// validKeyID checks a key ID: lowercase hex of 16 to 64 characters.
func validKeyID(id string) error {
	if len(id) < 16 || len(id) > 64 {
		return fmt.Errorf("tss: key ID %q must be 16 to 64 lowercase hex characters", id)
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("tss: key ID %q must be 16 to 64 lowercase hex characters", id)
		}
	}
	return nil
}

// SigningDigests returns the digests a signing proposal asks its parties
// to sign: the one digest of an [OpSign] proposal, every digest of an
// [OpOnline] batch, in order. Other operations sign nothing and return
// nil. A policy hook uses it to check each digest against what the site
// itself derived from the request. A malformed payload gives an error
// wrapping [ErrBadRequest].
func (p *Proposal) SigningDigests() ([][32]byte, error) {
	switch p.Op {
	case OpSign:
		if len(p.Payload) != 32 {
			return nil, fmt.Errorf("%w: a signing proposal carries a 32-byte digest, not %d bytes", ErrBadRequest, len(p.Payload))
		}
		return [][32]byte{[32]byte(p.Payload)}, nil
	case OpOnline:
		_, digests, err := decodeOnline(p.Payload)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
		return digests, nil
	}
	return nil, nil
}
