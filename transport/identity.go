package transport

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"

	lcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/keyquorum/keyquorum/tss"
)

// SignerKey is a libp2p private key whose signatures are made by a
// crypto.Signer, typically the party's HSM-resident identity key. The private
// key is never read: Raw returns [ErrKeyNotExportable].
//
// Which methods go-libp2p v0.51.0 calls on the host key, read in its source
// (paths relative to the module root) and confirmed by TestSignerKey_Calls:
//
//   - GetPublic: config/config.go (peer ID, peerstore), core/peer/peer.go
//     IDFromPrivateKey (called by p2p/security/tls, p2p/security/noise and
//     p2p/transport/quic/transport.go), core/record/envelope.go Seal.
//   - Sign: p2p/security/tls/crypto.go keyToCertificate (once per TLS
//     identity: one for TCP+TLS, one for QUIC, at construction), every
//     Noise handshake (p2p/security/noise/handshake.go
//     generateHandshakePayload), and the signed peer record
//     (p2p/host/basic/addrs_manager.go makeSignedPeerRecord → record.Seal)
//     whenever the local address set changes.
//   - Raw: config/quic.go derives the QUIC stateless-reset and token keys
//     from it unless libp2p.QUICReuse supplies the connection manager (New
//     does); p2p/host/basic/addrs_manager.go calls it only to estimate a
//     record size and tolerates the error; the WebRTC and WebTransport
//     transports need it, so New never enables them.
//   - Type and Equals: not called on the private key on these paths.
//     core/crypto/key.go MarshalPrivateKey would call Raw, but only the
//     datastore-backed peerstore (p2p/host/peerstore/pstoreds) uses it and
//     New uses the in-memory one.
//
// Nothing on these paths needs the private key's bytes.
type SignerKey struct {
	signer crypto.Signer
	pub    *ecdsa.PublicKey
	lpub   lcrypto.PubKey
	id     peer.ID
}

var _ lcrypto.PrivKey = (*SignerKey)(nil)

// NewSignerKey wraps s as a libp2p private key. s.Public() must be an ECDSA
// P-256 public key, and s.Sign must accept a SHA-256 digest with
// crypto.SHA256 as options and return an ASN.1 DER signature (as
// crypto/ecdsa and PKCS#11 CKM_ECDSA signers wrapped for crypto.Signer do).
func NewSignerKey(s crypto.Signer) (*SignerKey, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: no signer", ErrUnsupportedKey)
	}
	pub, ok := s.Public().(*ecdsa.PublicKey)
	if !ok || pub == nil {
		return nil, fmt.Errorf("%w: signer's public key is %T", ErrUnsupportedKey, s.Public())
	}
	lpub, id, err := libp2pPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return &SignerKey{signer: s, pub: pub, lpub: lpub, id: id}, nil
}

// libp2pPublicKey checks that pub is a valid P-256 point and returns its
// libp2p form and peer ID.
func libp2pPublicKey(pub *ecdsa.PublicKey) (lcrypto.PubKey, peer.ID, error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return nil, "", ErrUnsupportedKey
	}
	// ECDH validates the point (on the curve, not the identity).
	if _, err := pub.ECDH(); err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	lpub, err := lcrypto.ECDSAPublicKeyFromPubKey(*pub)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	id, err := peer.IDFromPublicKey(lpub)
	if err != nil {
		return nil, "", fmt.Errorf("transport: peer ID of identity key: %w", err)
	}
	return lpub, id, nil
}

// Sign signs data as libp2p's ECDSA keys do (core/crypto/ecdsa.go): an
// ASN.1 DER (r, s) signature over SHA-256(data). The signature is checked
// against the public key before it is returned, so a faulty token or a
// mismatched key is reported as [ErrBadSignature] instead of failing a remote
// handshake. A panic in the signer is returned as an error.
func (k *SignerKey) Sign(data []byte) (sig []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			sig, err = nil, fmt.Errorf("transport: identity signer panicked: %v", r)
		}
	}()
	digest := sha256.Sum256(data)
	sig, err = k.signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("transport: sign with identity key %s: %w", k.id, err)
	}
	if !ecdsa.VerifyASN1(k.pub, digest[:], sig) {
		return nil, fmt.Errorf("%w (identity %s)", ErrBadSignature, k.id)
	}
	return sig, nil
}

// GetPublic returns the libp2p form of the identity's public key.
func (k *SignerKey) GetPublic() lcrypto.PubKey { return k.lpub }

// Raw always fails with [ErrKeyNotExportable]: the private key stays in the
// signer.
func (k *SignerKey) Raw() ([]byte, error) { return nil, ErrKeyNotExportable }

// Type returns pb.KeyType_ECDSA, which tells peers to parse the public key
// as PKIX DER.
func (k *SignerKey) Type() pb.KeyType { return pb.KeyType_ECDSA }

// Equals reports whether o is a private key with the same public key. An
// ECDSA private key is determined by its public key, so this needs no
// private bytes.
func (k *SignerKey) Equals(o lcrypto.Key) bool {
	other, ok := o.(lcrypto.PrivKey)
	if !ok || other == nil {
		return false
	}
	return k.lpub.Equals(other.GetPublic())
}

// PeerID returns the libp2p peer ID of the identity.
func (k *SignerKey) PeerID() peer.ID { return k.id }

// PartyID returns the identity's tss party ID, the string form of its peer
// ID.
func (k *SignerKey) PartyID() tss.PartyID { return PartyIDFromPeer(k.id) }

// PeerIDFromPublicKey returns the libp2p peer ID of an ECDSA P-256 identity
// public key: the SHA-256 multihash of its libp2p public-key encoding
// (core/peer/peer.go IDFromPublicKey).
func PeerIDFromPublicKey(pub *ecdsa.PublicKey) (peer.ID, error) {
	_, id, err := libp2pPublicKey(pub)
	return id, err
}

// PartyIDFromPublicKey returns the tss party ID of the party whose identity
// public key is pub.
func PartyIDFromPublicKey(pub *ecdsa.PublicKey) (tss.PartyID, error) {
	id, err := PeerIDFromPublicKey(pub)
	if err != nil {
		return "", err
	}
	return PartyIDFromPeer(id), nil
}

// PartyIDFromPeer returns the tss party ID of a libp2p peer: its string
// form.
func PartyIDFromPeer(id peer.ID) tss.PartyID { return tss.PartyID(id.String()) }

// PeerIDFromParty parses a party ID back into a libp2p peer ID.
func PeerIDFromParty(p tss.PartyID) (peer.ID, error) {
	id, err := peer.Decode(string(p))
	if err != nil {
		return "", fmt.Errorf("transport: party ID %q is not a libp2p peer ID: %w", p, err)
	}
	return id, nil
}
