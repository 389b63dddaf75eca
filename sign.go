package keyquorum

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/keyquorum/keyquorum/policy"
	"github.com/keyquorum/keyquorum/tss"
	"github.com/keyquorum/keyquorum/wallet"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

// Protocol selects how a signature is made.
type Protocol string

// Signing protocols.
const (
	// ProtocolAuto uses GG20 when this site holds a ready presignature for
	// the request's (key, signers, path), and GG18 otherwise. It is the
	// default.
	ProtocolAuto Protocol = "auto"
	// ProtocolGG20 signs in one round trip with a ready presignature and
	// fails with tss.ErrNoPresignature when the pool is empty.
	ProtocolGG20 Protocol = "gg20"
	// ProtocolGG18 runs classic nine-round threshold signing; it needs no
	// presignature.
	ProtocolGG18 Protocol = "gg18"
)

// ParseProtocol parses "auto" (or ""), "gg20" or "gg18".
func ParseProtocol(s string) (Protocol, error) {
	switch Protocol(s) {
	case "", ProtocolAuto:
		return ProtocolAuto, nil
	case ProtocolGG20, ProtocolGG18:
		return Protocol(s), nil
	}
	return "", fmt.Errorf("%w: unknown signing protocol %q (want auto, gg20 or gg18)", tss.ErrBadRequest, s)
}

// SignOptions are the choices every signing call shares.
type SignOptions struct {
	// Signers are the sites that sign; they must include this site and
	// number at least the key's threshold. Empty lets this site choose
	// M-1 co-signers that are up: connected ones first (the most recently
	// heard from first), the others dialed at once (a site whose port
	// refuses is skipped at once), preferring for GG20 a set with ready
	// presignatures; if a chosen one drops before the session, it chooses
	// once more without it. With fewer than M-1 reachable it fails at once
	// with ErrNotEnoughSigners and a *tss.UnreachableError naming the
	// others. A named set is used as given: a site of it that is down
	// makes the signature fail naming it.
	Signers []tss.PartyID
	// Protocol selects GG20, GG18 or automatic choice. Default
	// ProtocolAuto.
	Protocol Protocol
	// Intent is what the signature is for (see package policy): every
	// signing site derives the digests from it and signs only those, if
	// its own signing policy allows it. Nil in a SignRequest means a raw
	// digest intent of Digest and Path, which a policy refuses unless a
	// rule allows raw digests explicitly. SignPSBT and SignEthereumTx make
	// their own intent and refuse one given here.
	Intent *policy.Intent
	// Approvals are people's approvals of the intent (policy.SignStatement,
	// or ssh-keygen -Y sign -n keyquorum-approval over the plan's
	// Statement). Every signing site verifies each one against its own
	// policy.
	Approvals []policy.Approval
	// Evidence is passed to every signer's Config.Policy hook. It is not
	// secret.
	Evidence []byte
}

// evidence encodes what travels with a signing proposal: the intent (a
// raw digest intent of digest and path when opts has none), the approvals
// and the user evidence.
func (opts *SignOptions) evidence(digest [32]byte, path string) ([]byte, error) {
	in := opts.Intent
	if in == nil {
		p, err := hd.ParsePath(orRoot(path))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", tss.ErrBadRequest, err)
		}
		if in, err = policy.NewRawDigestIntent(p, digest); err != nil {
			return nil, fmt.Errorf("%w: %w", tss.ErrBadRequest, err)
		}
	}
	ev := signEvidence{intent: in.Bytes(), user: opts.Evidence}
	if len(opts.Approvals) > 0 {
		b, err := policy.EncodeApprovals(opts.Approvals)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", tss.ErrBadRequest, err)
		}
		ev.approvals = b
	}
	return ev.encode(), nil
}

// SignRequest asks for a signature over a digest.
type SignRequest struct {
	// KeyID names the key.
	KeyID string
	// Digest is the 32-byte message digest, signed as is (never hashed
	// again). It must not be zero modulo the group order.
	Digest [32]byte
	// Path is the BIP-32 non-hardened derivation path ("" or "m" for the
	// key itself); the signature verifies under the derived key.
	Path string
	SignOptions
}

// Signature is a threshold signature and the protocol that made it. The
// node returns it only after it verified under the (derived) public key,
// with S in the lower half and the recovery ID set.
type Signature struct {
	tss.Signature
	// Protocol is the protocol that made it: ProtocolGG20 or ProtocolGG18.
	Protocol Protocol
	// Signers are the sites that signed, sorted.
	Signers []tss.PartyID
}

// Sign signs req.Digest with the key's signers. With [ProtocolAuto] it uses a
// ready GG20 presignature of (key, signers, path) when this site holds one
// and GG18 otherwise.
//
// Failures wrap [tss.ErrUnknownKey], [tss.ErrBadRequest],
// [tss.ErrNoPresignature] ([ProtocolGG20] only), or are a [*tss.RoundTimeoutError]
// naming the signers that did not answer, a *tss.RefusedError from a signer
// whose checks or Policy refused, a *tss.CulpritError naming a cheater.
func (n *Node) Sign(ctx context.Context, req SignRequest) (*Signature, error) {
	ctx, done, err := n.enter(ctx, true)
	if err != nil {
		return nil, err
	}
	defer done()
	h := n.ops.startIn(ctx, "sign", req.KeyID, req.Signers)
	sig, err := n.sign(ctx, req, h)
	h.end(err)
	if err != nil {
		return nil, fmt.Errorf("keyquorum: sign with key %q: %w", req.KeyID, err)
	}
	return sig, nil
}

func (n *Node) sign(ctx context.Context, req SignRequest, h op) (*Signature, error) {
	proto, err := ParseProtocol(string(req.Protocol))
	if err != nil {
		return nil, err
	}
	path, err := canonicalPath(req.Path)
	if err != nil {
		return nil, err
	}
	if err := n.checkSigners(req.Signers); err != nil {
		return nil, err
	}
	var m secp256k1.ModNScalar
	if m.SetBytes(&req.Digest); m.IsZero() {
		return nil, fmt.Errorf("%w: digest is zero modulo the group order", tss.ErrBadRequest)
	}
	if len(req.Signers) > 0 {
		// Refuse a set that cannot sign before authorizing anything.
		if err := n.checkCommittee(ctx, req.KeyID, req.Signers); err != nil {
			return nil, err
		}
	}
	// This site checks its own request as every other signer will: the
	// digest must come from the intent, and the policy must allow it.
	evidence, err := req.evidence(req.Digest, path)
	if err != nil {
		return nil, err
	}
	if _, err := n.authorize(ctx, n.party, "", req.KeyID, path, [][32]byte{req.Digest}, evidence); err != nil {
		n.metrics.refusedHere(err)
		if errors.Is(err, policy.ErrRefused) || errors.Is(err, ErrNoSigningPolicy) || errors.Is(err, ErrDigestNotInIntent) {
			return nil, fmt.Errorf("%w: %w", tss.ErrPolicy, err)
		}
		return nil, err
	}
	if len(req.Signers) > 0 {
		return n.signWith(ctx, req, proto, path, tss.SortParties(req.Signers), evidence, h)
	}
	// No signers named: choose live ones, and if one of them drops before
	// the session, choose once more without it.
	signers, err := n.chooseSigners(ctx, req.KeyID, path, proto != ProtocolGG18, nil)
	if err != nil {
		return nil, err
	}
	sig, err := n.signWith(ctx, req, proto, path, signers, evidence, h)
	if dropped := droppedSigners(err, n.party); dropped != nil {
		again, cerr := n.chooseSigners(ctx, req.KeyID, path, proto != ProtocolGG18, dropped)
		if cerr != nil {
			return nil, errors.Join(err, cerr)
		}
		n.log.Info("co-signer unreachable; signing with others", "key", req.KeyID, "dropped", fmt.Sprint(keys(dropped)), "signers", fmt.Sprint(again))
		return n.signWith(ctx, req, proto, path, again, evidence, h)
	}
	return sig, err
}

func keys(m map[tss.PartyID]bool) []tss.PartyID {
	out := make([]tss.PartyID, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	return tss.SortParties(out)
}

// signWith signs with a given signer set: GG20 when proto asks for it, or
// for ProtocolAuto when this site holds a ready presignature of the set.
func (n *Node) signWith(ctx context.Context, req SignRequest, proto Protocol, path string, signers []tss.PartyID, evidence []byte, h op) (*Signature, error) {
	var err error
	if proto == ProtocolAuto {
		proto = ProtocolGG18
		st, err := n.eng.PoolStatus(ctx, tss.PoolSpec{KeyID: req.KeyID, Signers: signers, Path: path})
		if err != nil {
			return nil, err
		}
		if st.Ready > 0 {
			proto = ProtocolGG20
		}
	}
	h.update("", signers, string(proto))
	var sig *tss.Signature
	if proto == ProtocolGG20 {
		sig, err = n.eng.SignOnline(ctx, tss.OnlineRequest{KeyID: req.KeyID, Signers: signers, Path: path,
			Digests: [][]byte{req.Digest[:]}, Evidence: evidence})
		if errors.Is(err, tss.ErrNoPresignature) && req.Protocol != ProtocolGG20 {
			// The last ready presignature went to a concurrent call.
			proto = ProtocolGG18
			h.update("", nil, string(proto))
			sig, err = nil, nil
		} else if errors.Is(err, tss.ErrNoPresignature) {
			return nil, fmt.Errorf("%w (signers %v, path %q): make some first (Node.Presign; kqnode presign), or sign with %s",
				err, signers, orRoot(path), ProtocolGG18)
		}
	}
	if proto == ProtocolGG18 {
		sig, err = n.eng.Sign(ctx, tss.SignRequest{KeyID: req.KeyID, Digest: req.Digest[:], Signers: signers,
			Path: path, Evidence: evidence})
	}
	if err != nil {
		return nil, fmt.Errorf("%s with signers %v: %w", proto, signers, err)
	}
	// The engine verified it; verify again at the boundary, it is cheap.
	if err := sig.Verify(); err != nil {
		return nil, fmt.Errorf("%s with signers %v: %w", proto, signers, err)
	}
	n.recordQuiet(auditSignResult, map[string]string{"key_id": req.KeyID, "path": orRoot(path), "protocol": string(proto),
		"signers": parties(signers), "digest": hex.EncodeToString(req.Digest[:]),
		"r": hex.EncodeToString(sig.R[:]), "s": hex.EncodeToString(sig.S[:])})
	return &Signature{Signature: *sig, Protocol: proto, Signers: signers}, nil
}

// WalletSigner returns a [wallet.Signer] that signs with keyID through this
// node, for the wallet package's functions (SignPSBT, SignEthereumTx,
// SignPersonalMessage, SignTypedData). Each digest is signed as Sign would.
func (n *Node) WalletSigner(keyID string, opts SignOptions) wallet.Signer {
	return &walletSigner{n: n, keyID: keyID, opts: opts}
}

type walletSigner struct {
	n     *Node
	keyID string
	opts  SignOptions
}

// PublicKey implements wallet.KeySource.
func (w *walletSigner) PublicKey(ctx context.Context, path hd.Path) (*secp256k1.PublicKey, error) {
	return w.n.PublicKey(ctx, KeyPathRequest{KeyID: w.keyID, Path: path.String()})
}

// SignDigest implements wallet.Signer.
func (w *walletSigner) SignDigest(ctx context.Context, digest [32]byte, path hd.Path) (*wallet.Signature, error) {
	sig, err := w.n.Sign(ctx, SignRequest{KeyID: w.keyID, Digest: digest, Path: path.String(), SignOptions: w.opts})
	if err != nil {
		return nil, err
	}
	return &wallet.Signature{R: sig.R, S: sig.S, RecoveryID: sig.RecoveryID}, nil
}

// PSBTRequest asks to sign the inputs of a PSBT that belong to a key.
type PSBTRequest struct {
	// KeyID names the key.
	KeyID string
	// Packet is the PSBT (see wallet.ParsePSBT); it is not modified.
	Packet *psbt.Packet
	// Options say which network the PSBT spends on (required), which
	// derivation paths identify this key's inputs when the PSBT has no
	// BIP-32 fields for them, and which sighash types are allowed.
	Options wallet.PSBTOptions
	SignOptions
}

// SignPSBT signs every input of req.Packet that belongs to the key (see
// [wallet.SignPSBT]), one threshold signature per input, checks each
// finalized input with btcd's script engine and extracts the transaction
// when every input is final. Failures wrap the wallet sentinels
// ([wallet.ErrNothingToSign], [wallet.ErrInvalidPSBT], ...) or Sign's errors.
func (n *Node) SignPSBT(ctx context.Context, req PSBTRequest) (*wallet.SignedPSBT, error) {
	ctx, done, err := n.enter(ctx, true)
	if err != nil {
		return nil, err
	}
	defer done()
	if req.Packet == nil {
		return nil, fmt.Errorf("keyquorum: sign PSBT: %w: no PSBT", wallet.ErrInvalidPSBT)
	}
	if req.Intent != nil {
		return nil, fmt.Errorf("keyquorum: sign PSBT: %w: SignPSBT makes the intent from the PSBT; leave SignOptions.Intent empty", tss.ErrBadRequest)
	}
	if req.Options.Net == nil {
		return nil, fmt.Errorf("keyquorum: sign PSBT: %w: no network (PSBTOptions.Net)", wallet.ErrInvalidPSBT)
	}
	var raw bytes.Buffer
	if err := req.Packet.Serialize(&raw); err != nil {
		return nil, fmt.Errorf("keyquorum: sign PSBT: %w: %v", wallet.ErrInvalidPSBT, err)
	}
	in, err := policy.NewPSBTIntent(intentNetwork(req.Options.Net), raw.Bytes(), req.Options.Paths...)
	if err != nil {
		return nil, fmt.Errorf("keyquorum: sign PSBT with key %q: %w", req.KeyID, err)
	}
	// Every site derives the same plan; refuse here, once, what they
	// would refuse for every input.
	if _, err := n.plan(ctx, req.KeyID, in); err != nil {
		return nil, fmt.Errorf("keyquorum: sign PSBT with key %q: %w", req.KeyID, err)
	}
	opts := req.SignOptions
	opts.Intent = in
	h := n.ops.start("sign-psbt", req.KeyID, req.Signers)
	h.update("", nil, fmt.Sprintf("%d inputs", len(req.Packet.Inputs)))
	res, err := wallet.SignPSBT(stepOf(ctx, h), n.WalletSigner(req.KeyID, opts), req.Packet, req.Options)
	h.end(err)
	if err != nil {
		return nil, fmt.Errorf("keyquorum: sign PSBT with key %q: %w", req.KeyID, err)
	}
	return res, nil
}

// EthereumTxRequest asks to sign an Ethereum transaction.
type EthereumTxRequest struct {
	// KeyID names the key.
	KeyID string
	// Tx is the unsigned transaction (see wallet.ParseEthereumTx): legacy,
	// EIP-2930 or EIP-1559.
	Tx *types.Transaction
	// ChainID is the chain to sign for; typed transactions must carry the
	// same one.
	ChainID *big.Int
	// Path is the derivation path of the sending key ("" for the key
	// itself).
	Path string
	SignOptions
}

// SignEthereumTx signs req.Tx (see [wallet.SignEthereumTx]); go-ethereum
// recovers the sender from the result before it is returned. Failures wrap
// the wallet sentinels ([wallet.ErrChainID], [wallet.ErrInvalidTransaction],
// ...) or Sign's errors.
func (n *Node) SignEthereumTx(ctx context.Context, req EthereumTxRequest) (*wallet.SignedEthereumTx, error) {
	ctx, done, err := n.enter(ctx, true)
	if err != nil {
		return nil, err
	}
	defer done()
	if req.Tx == nil || req.ChainID == nil {
		return nil, fmt.Errorf("keyquorum: sign Ethereum transaction: %w: transaction and chain ID are required", wallet.ErrInvalidTransaction)
	}
	path, err := hd.ParsePath(orRoot(req.Path))
	if err != nil {
		return nil, fmt.Errorf("keyquorum: sign Ethereum transaction: %w: %w", tss.ErrBadRequest, err)
	}
	if req.Intent != nil {
		return nil, fmt.Errorf("keyquorum: sign Ethereum transaction: %w: SignEthereumTx makes the intent from the transaction; leave SignOptions.Intent empty", tss.ErrBadRequest)
	}
	if !req.ChainID.IsUint64() || req.ChainID.Sign() <= 0 {
		return nil, fmt.Errorf("keyquorum: sign Ethereum transaction: %w: chain ID %s is not a positive 64-bit number", wallet.ErrChainID, req.ChainID)
	}
	unsigned, err := req.Tx.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("keyquorum: sign Ethereum transaction: %w: %v", wallet.ErrInvalidTransaction, err)
	}
	in, err := policy.NewEthereumTxIntent(req.ChainID.Uint64(), path, unsigned)
	if err != nil {
		return nil, fmt.Errorf("keyquorum: sign Ethereum transaction with key %q: %w", req.KeyID, err)
	}
	opts := req.SignOptions
	opts.Intent = in
	h := n.ops.start("sign-eth", req.KeyID, req.Signers)
	res, err := wallet.SignEthereumTx(stepOf(ctx, h), n.WalletSigner(req.KeyID, opts), path, req.Tx, req.ChainID)
	h.end(err)
	if err != nil {
		return nil, fmt.Errorf("keyquorum: sign Ethereum transaction with key %q: %w", req.KeyID, err)
	}
	return res, nil
}

// intentNetwork names a Bitcoin network as intents do: btcd calls testnet3
// "testnet3", intents "testnet".
func intentNetwork(p *chaincfg.Params) string {
	if p.Name == chaincfg.TestNet3Params.Name {
		return "testnet"
	}
	return p.Name
}
