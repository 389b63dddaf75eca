package wallet_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/btcsuite/btcd/txscript"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/keyquorum/keyquorum/wallet"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

func signLocal(t *testing.T, k *localKey, msg string) ([32]byte, *wallet.Signature, *secp256k1.PublicKey) {
	t.Helper()
	digest := sha256.Sum256([]byte(msg))
	sig, err := k.SignDigest(context.Background(), digest, hd.Path{})
	if err != nil {
		t.Fatal(err)
	}
	return digest, sig, k.priv.PubKey()
}

func TestSignature_CanonicalNormalizesHighSAndFixesRecoveryID(t *testing.T) {
	k := newLocalKey(t, "", nil)
	for i := 0; i < 32; i++ {
		digest, sig, pub := signLocal(t, k, string(rune('a'+i)))
		for name, in := range map[string]wallet.Signature{
			"as signed":           *sig,
			"recovery ID zeroed":  {R: sig.R, S: sig.S},
			"recovery ID flipped": {R: sig.R, S: sig.S, RecoveryID: sig.RecoveryID ^ 1},
			"high S":              func() wallet.Signature { h, _ := highS(sig); return *h }(),
		} {
			got, err := in.Canonical(digest, pub)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !got.IsLowS() {
				t.Fatalf("%s: Canonical left a high S", name)
			}
			// go-ethereum must recover the key from R || S || V.
			c := got.Compact65()
			rec, err := crypto.SigToPub(digest[:], c[:])
			if err != nil || !bytes.Equal(crypto.FromECDSAPub(rec), pub.SerializeUncompressed()) {
				t.Fatalf("%s: go-ethereum does not recover the key from %s (%v)", name, got, err)
			}
		}
	}
}

func TestSignature_CanonicalRejectsBadSignatures(t *testing.T) {
	k := newLocalKey(t, "", nil)
	digest, sig, pub := signLocal(t, k, "pay 1 BTC")
	other := newLocalKey(t, "", nil).priv.PubKey()
	n := secp256k1.S256().N.FillBytes(make([]byte, 32))

	otherDigest := sha256.Sum256([]byte("pay 2 BTC"))
	tests := map[string]struct {
		sig    wallet.Signature
		digest [32]byte
		pub    *secp256k1.PublicKey
	}{
		"other key":      {*sig, digest, other},
		"other digest":   {*sig, otherDigest, pub},
		"zero R":         {wallet.Signature{S: sig.S}, digest, pub},
		"zero S":         {wallet.Signature{R: sig.R}, digest, pub},
		"R equal to n":   {wallet.Signature{R: [32]byte(n), S: sig.S}, digest, pub},
		"S equal to n":   {wallet.Signature{R: sig.R, S: [32]byte(n)}, digest, pub},
		"no public key":  {*sig, digest, nil},
		"flipped R byte": {func() wallet.Signature { s := *sig; s.R[31] ^= 1; return s }(), digest, pub},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := tc.sig.Canonical(tc.digest, tc.pub); !errors.Is(err, wallet.ErrInvalidSignature) {
				t.Fatalf("err = %v, want ErrInvalidSignature", err)
			}
		})
	}
}

func TestSignature_RecoverPublicKeyRejectsBadRecoveryID(t *testing.T) {
	k := newLocalKey(t, "", nil)
	digest, sig, _ := signLocal(t, k, "x")
	bad := *sig
	bad.RecoveryID = 4
	if _, err := bad.RecoverPublicKey(digest); !errors.Is(err, wallet.ErrInvalidSignature) {
		t.Fatalf("err = %v, want ErrInvalidSignature", err)
	}
}

// TestSignature_DERIsStrictAndLowS checks DER against btcd's script-level
// encoding rules (BIP-66 strict DER, BIP-146 low S) by running a P2PK
// CHECKSIG-free check through txscript's own signature parser.
func TestSignature_DERIsStrictAndLowS(t *testing.T) {
	k := newLocalKey(t, "", nil)
	for i := 0; i < 32; i++ {
		digest, sig, pub := signLocal(t, k, string(rune('A'+i)))
		h, _ := highS(sig)
		for _, s := range []*wallet.Signature{sig, h} {
			der := s.DER()
			parsed, err := ecdsa.ParseDERSignature(der)
			if err != nil {
				t.Fatalf("dcrd rejects DER %x: %v", der, err)
			}
			if !parsed.Verify(digest[:], pub) {
				t.Fatal("DER signature does not verify")
			}
			// txscript's strict encoding check (the one standardness
			// rules apply) for a signature with its sighash byte.
			vm := sigEncodingChecker(t)
			if err := vm(append(der, byte(txscript.SigHashAll))); err != nil {
				t.Fatalf("txscript rejects DER %x: %v", der, err)
			}
			back, err := wallet.ParseDER(der)
			if err != nil || back.R != sig.R || !back.IsLowS() {
				t.Fatalf("ParseDER round trip: %v %v", back, err)
			}
		}
	}
	// Control: the checker does catch a high-S signature, which DER()
	// never produces.
	_, sig, _ := signLocal(t, k, "control")
	h, _ := highS(sig)
	if err := sigEncodingChecker(t)(append(rawDER(h.R[:], h.S[:]), byte(txscript.SigHashAll))); err == nil {
		t.Fatal("the encoding checker accepts a high-S signature")
	}
	if _, err := wallet.ParseDER([]byte{0x30, 0x01}); !errors.Is(err, wallet.ErrInvalidSignature) {
		t.Fatalf("ParseDER(garbage) err = %v, want ErrInvalidSignature", err)
	}
}

// sigEncodingChecker returns a function that runs btcd's script engine on a
// script that only pushes the signature and checks it against a dummy key
// with OP_CHECKSIG under StandardVerifyFlags. The engine checks the
// encoding (strict DER, low S, defined hash type) before the signature
// itself, so an encoding problem is reported as such, while a well-encoded
// signature merely fails verification (leaving false on the stack).
func sigEncodingChecker(t *testing.T) func([]byte) error {
	t.Helper()
	return func(sig []byte) error {
		pub := newLocalKey(t, "", nil).priv.PubKey().SerializeCompressed()
		script, err := txscript.NewScriptBuilder().AddData(sig).AddData(pub).AddOp(txscript.OP_CHECKSIG).AddOp(txscript.OP_NOT).Script()
		if err != nil {
			return err
		}
		tx := spendingTx()
		vm, err := txscript.NewEngine(script, tx, 0, txscript.StandardVerifyFlags&^txscript.ScriptVerifyCleanStack&^txscript.ScriptVerifyNullFail, nil, nil, 0, nil)
		if err != nil {
			return err
		}
		return vm.Execute()
	}
}

func TestSignature_Compact65Layout(t *testing.T) {
	var sig wallet.Signature
	for i := range sig.R {
		sig.R[i], sig.S[i] = 1, 2
	}
	sig.RecoveryID = 1
	c := sig.Compact65()
	if !bytes.Equal(c[:32], sig.R[:]) || !bytes.Equal(c[32:64], sig.S[:]) || c[64] != 1 {
		t.Fatalf("Compact65 = %x", c)
	}
}

// rawDER encodes (r, s) in DER exactly as given, without normalizing S.
func rawDER(r, s []byte) []byte {
	integer := func(v []byte) []byte {
		v = bytes.TrimLeft(v, "\x00")
		if len(v) == 0 || v[0]&0x80 != 0 {
			v = append([]byte{0}, v...)
		}
		return append([]byte{0x02, byte(len(v))}, v...)
	}
	body := append(integer(r), integer(s)...)
	return append([]byte{0x30, byte(len(body))}, body...)
}
