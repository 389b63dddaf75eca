package audit_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/keyquorum/keyquorum/audit"
)

// TestSignatureFormats_MatchFORMAT checks the checkpoint and cosignature
// bytes against FORMAT.md with an independent implementation of it.
func TestSignatureFormats_MatchFORMAT(t *testing.T) {
	wkey := newKey(t)
	wv, _ := audit.NewCosignatureVerifier(witnessB, wkey.Public())
	s := newSite(t, func(c *audit.Config) { c.Witnesses = []note.Verifier{wv} })
	w := newWitnessWithKey(t, witnessB, wkey, s.verifier(t))
	s.appendN(t, 3)
	cp, err := cosign(t, s, w, s.checkpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	text, sigs, ok := strings.Cut(string(cp.Note()), "\n\n")
	text += "\n"
	if !ok || text != cp.Text() || !strings.HasPrefix(text, originA+"\n3\n") {
		t.Fatalf("note %q", cp.Note())
	}
	lines := strings.Split(strings.TrimSuffix(sigs, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("signature lines %q", lines)
	}

	// Checkpoint signature: type 0x02, key ID SHA-256(SPKI)[:4], ASN.1
	// ECDSA over SHA-256(text).
	spki, _ := x509.MarshalPKIXPublicKey(s.key.Public())
	raw := sigBytes(t, lines[0], originA)
	id := sha256.Sum256(spki)
	if !bytes.Equal(raw[:4], id[:4]) {
		t.Fatalf("checkpoint key ID %x, want %x", raw[:4], id[:4])
	}
	d := sha256.Sum256([]byte(text))
	if !ecdsa.VerifyASN1(&s.key.PublicKey, d[:], raw[4:]) {
		t.Fatal("checkpoint signature is not ECDSA over SHA-256(text)")
	}
	vkey, _ := audit.VerifierKey(s.verifier(t))
	wantVKey := originA + "+" + hex.EncodeToString(id[:4]) + "+" + base64.StdEncoding.EncodeToString(append([]byte{0x02}, spki...))
	if vkey != wantVKey {
		t.Fatalf("vkey %s\nwant %s", vkey, wantVKey)
	}

	// Cosignature: type 0xff || identifier || 0x0a, key ID over name,
	// type and SPKI, u64 timestamp || ASN.1 ECDSA over SHA-256 of the
	// cosignature/v1 message.
	wspki, _ := x509.MarshalPKIXPublicKey(wkey.Public())
	typ := append(append([]byte{0xff}, "keyquorum/audit/cosignature-ecdsa-p256/v1"...), '\n')
	h := sha256.New()
	h.Write([]byte(witnessB + "\n"))
	h.Write(typ)
	h.Write(wspki)
	wid := h.Sum(nil)[:4]
	raw = sigBytes(t, lines[1], witnessB)
	if !bytes.Equal(raw[:4], wid) {
		t.Fatalf("cosignature key ID %x, want %x", raw[:4], wid)
	}
	ts := binary.BigEndian.Uint64(raw[4:12])
	msg := "cosignature/v1\ntime " + strconv.FormatUint(ts, 10) + "\n" + text
	d = sha256.Sum256([]byte(msg))
	if !ecdsa.VerifyASN1(&wkey.PublicKey, d[:], raw[12:]) {
		t.Fatal("cosignature is not ECDSA over SHA-256 of the cosignature/v1 message")
	}
	if uint64(cp.Cosignatures[0].Time.Unix()) != ts {
		t.Fatal("cosignature time differs from its timestamp")
	}
	wvkey, _ := audit.VerifierKey(wv)
	if want := witnessB + "+" + hex.EncodeToString(wid) + "+" + base64.StdEncoding.EncodeToString(append(typ, wspki...)); wvkey != want {
		t.Fatalf("cosigner vkey %s\nwant %s", wvkey, want)
	}
}

func sigBytes(t *testing.T, line, name string) []byte {
	t.Helper()
	rest, ok := strings.CutPrefix(line, "— "+name+" ")
	if !ok {
		t.Fatalf("signature line %q is not by %s", line, name)
	}
	raw, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestParseVerifierKey(t *testing.T) {
	key := newKey(t)
	v, _ := audit.NewVerifier(originA, key.Public())
	cv, _ := audit.NewCosignatureVerifier(witnessB, key.Public())
	for _, want := range []note.Verifier{v, cv} {
		vkey, err := audit.VerifierKey(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := audit.ParseVerifierKey(vkey)
		if err != nil {
			t.Fatalf("ParseVerifierKey(%s): %v", vkey, err)
		}
		if got.Name() != want.Name() || got.KeyHash() != want.KeyHash() {
			t.Fatalf("parsed %s+%08x, want %s+%08x", got.Name(), got.KeyHash(), want.Name(), want.KeyHash())
		}
	}
	// The same key under both types has different key IDs.
	if v.KeyHash() == cv.KeyHash() {
		t.Fatal("checkpoint and cosignature key IDs collide")
	}
	vkey, _ := audit.VerifierKey(v)
	name, rest, _ := strings.Cut(vkey, "+")
	hash, b64, _ := strings.Cut(rest, "+")
	ed25519Key := base64.StdEncoding.EncodeToString(append([]byte{0x01}, make([]byte, 32)...))
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	spki384, _ := x509.MarshalPKIXPublicKey(p384.Public())
	for _, bad := range []string{
		"",
		name,
		name + "+" + hash,
		name + "+zzzzzzzz+" + b64,
		name + "+00000000+" + b64, // wrong key hash
		name + "+" + hash + "+!!!",
		"a b+" + hash + "+" + b64,
		name + "+" + hash + "+" + ed25519Key,
		name + "+" + hash + "+" + base64.StdEncoding.EncodeToString(append([]byte{0x02}, spki384...)),
		name + "+" + hash + "+" + base64.StdEncoding.EncodeToString([]byte{0x02, 1, 2, 3}),
	} {
		if _, err := audit.ParseVerifierKey(bad); !errors.Is(err, audit.ErrMalformed) {
			t.Errorf("ParseVerifierKey(%q) = %v, want ErrMalformed", bad, err)
		}
	}
	if _, err := audit.NewVerifier(originA, p384.Public()); !errors.Is(err, audit.ErrInvalidConfig) {
		t.Errorf("P-384 key accepted: %v", err)
	}
	if _, err := audit.Open(t.TempDir()+"/x", audit.Config{Origin: originA, Site: "s", Signer: p384}); !errors.Is(err, audit.ErrInvalidConfig) {
		t.Errorf("Open with a P-384 signer: %v", err)
	}
}

var update = flag.Bool("update", false, "rewrite testdata/vectors.json")

// vectors are fixed signed checkpoints and cosignatures, so that a change
// of the formats cannot go unnoticed. Made with
//
//	go test ./audit -run TestVectors -update
type vectors struct {
	LogKey        string   `json:"log_key"`     // PKCS#8, hex
	WitnessKey    string   `json:"witness_key"` // PKCS#8, hex
	LogVKey       string   `json:"log_vkey"`
	WitnessVKey   string   `json:"witness_vkey"`
	Entries       []string `json:"entries"`
	Checkpoint    string   `json:"checkpoint"` // signed by the log, cosigned by the witness
	InclusionOf1  string   `json:"inclusion_of_1"`
	CosignRequest string   `json:"cosign_request"`
}

func TestVectors(t *testing.T) {
	path := filepath.Join("testdata", "vectors.json")
	if *update {
		writeVectors(t, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	logKey, witKey := parseKey(t, v.LogKey), parseKey(t, v.WitnessKey)
	lv, err := audit.ParseVerifierKey(v.LogVKey)
	if err != nil {
		t.Fatal(err)
	}
	wv, err := audit.ParseVerifierKey(v.WitnessVKey)
	if err != nil {
		t.Fatal(err)
	}
	lv2, _ := audit.NewVerifier(originA, logKey.Public())
	wv2, _ := audit.NewCosignatureVerifier(witnessB, witKey.Public())
	if k, _ := audit.VerifierKey(lv2); k != v.LogVKey {
		t.Fatalf("log vkey changed: %s", k)
	}
	if k, _ := audit.VerifierKey(wv2); k != v.WitnessVKey {
		t.Fatalf("witness vkey changed: %s", k)
	}
	cp, err := audit.OpenCheckpoint([]byte(v.Checkpoint), lv, wv)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != uint64(len(v.Entries)) || len(cp.Cosignatures) != 1 {
		t.Fatalf("checkpoint %+v", cp)
	}
	var p audit.InclusionProof
	if err := json.Unmarshal([]byte(v.InclusionOf1), &p); err != nil {
		t.Fatal(err)
	}
	e, _, err := audit.VerifyInclusion(&p, lv, []note.Verifier{wv}, 1)
	if err != nil || string(e.JSON()) != v.Entries[1] {
		t.Fatalf("inclusion proof of entry 1: %v", err)
	}
	req, err := audit.ParseCosignRequest([]byte(v.CosignRequest))
	if err != nil || string(req.Marshal()) != v.CosignRequest {
		t.Fatalf("cosign request: %v", err)
	}
}

func parseKey(t testing.TB, h string) *ecdsa.PrivateKey {
	t.Helper()
	der, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*ecdsa.PrivateKey)
}

func writeVectors(t *testing.T, path string) {
	ctx := context.Background()
	wkey := newKey(t)
	wv, _ := audit.NewCosignatureVerifier(witnessB, wkey.Public())
	s := newSite(t, func(c *audit.Config) {
		c.Witnesses = []note.Verifier{wv}
		c.Now = fixedClock(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC), 1500*time.Microsecond)
	})
	w := newWitnessWithKey(t, witnessB, wkey, s.verifier(t))
	s.appendN(t, 5)
	first, _ := cosign(t, s, w, s.checkpoint(t))
	s.appendN(t, 2)
	cp := s.checkpoint(t)
	req, err := s.log.CosignRequest(cp, first.Size)
	if err != nil {
		t.Fatal(err)
	}
	cp, err = cosign(t, s, w, cp)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.log.Prove(ctx, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	pj, _ := json.Marshal(p)
	lder, _ := x509.MarshalPKCS8PrivateKey(s.key)
	wder, _ := x509.MarshalPKCS8PrivateKey(wkey)
	lvkey, _ := audit.VerifierKey(s.verifier(t))
	wvkey, _ := audit.VerifierKey(wv)
	v := vectors{
		LogKey: hex.EncodeToString(lder), WitnessKey: hex.EncodeToString(wder),
		LogVKey: lvkey, WitnessVKey: wvkey,
		Checkpoint: string(cp.Note()), InclusionOf1: string(pj), CosignRequest: string(req.Marshal()),
	}
	tail, _ := s.log.Tail(ctx, 100)
	for _, e := range tail {
		v.Entries = append(v.Entries, string(e.JSON()))
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
