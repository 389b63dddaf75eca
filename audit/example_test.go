package audit_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/mod/sumdb/note"

	"github.com/keyquorum/keyquorum/audit"
)

// A site records what it does before doing it, signs a checkpoint, and an
// auditor verifies a copy of the log with the site's public key.
func Example() {
	ctx := context.Background()
	tmp, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "audit")

	// In keyquorum the signer is the site's HSM identity or audit key.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	log, err := audit.Open(dir, audit.Config{Origin: "keyquorum.example/site-a", Site: "site-a", Signer: key})
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = log.Append(ctx, audit.Record{Type: "sign.proposal", Fields: map[string]string{
		"session": "5f0c…", "key": "k1", "digest": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
	}})
	if errors.Is(err, audit.ErrAppendFailed) {
		fmt.Println("cannot record the proposal: refuse to sign") // fail closed
		return
	}
	// ... only now release the signature share ...
	log.Append(ctx, audit.Record{Type: "sign.outcome", Fields: map[string]string{"result": "signed"}})
	cp, _ := log.Checkpoint(ctx)
	log.Close()
	fmt.Printf("checkpoint of %s at size %d\n", cp.Origin, cp.Size)

	// The auditor needs only the verifier key.
	vkey, _ := audit.VerifierKey(log.Verifier())
	v, _ := audit.ParseVerifierKey(vkey)
	rep, err := audit.Verify(ctx, dir, audit.VerifyOptions{Log: v})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("verified %d entries, %d unsigned\n", rep.Entries, rep.Unsigned)
	// Output:
	// checkpoint of keyquorum.example/site-a at size 2
	// verified 2 entries, 0 unsigned
}

// Site B witnesses site A's log: it checks each new checkpoint against the
// last one it saw and cosigns it; site A stores the cosignature.
func ExampleWitness() {
	ctx := context.Background()
	tmp, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(tmp)

	keyA, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyB, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	logA, _ := audit.NewVerifier("keyquorum.example/site-a", keyA.Public())
	cosignerB, _ := audit.NewCosignatureVerifier("keyquorum.example/site-b", keyB.Public())

	store, _ := audit.OpenWitnessStore(filepath.Join(tmp, "witness-b"))
	defer store.Close()
	witnessB, _ := audit.NewWitness(audit.WitnessConfig{
		Name: "keyquorum.example/site-b", Signer: keyB, Logs: []note.Verifier{logA}, Store: store,
	})

	log, _ := audit.Open(filepath.Join(tmp, "audit-a"), audit.Config{
		Origin: "keyquorum.example/site-a", Site: "site-a", Signer: keyA, Witnesses: []note.Verifier{cosignerB},
	})
	defer log.Close()
	for range 3 {
		log.Append(ctx, audit.Record{Type: "node.heartbeat"})
	}
	cp, _ := log.Checkpoint(ctx)

	// Site A asks from the size it believes B last saw; B answers with
	// a conflict naming its size when A is wrong.
	req, _ := log.CosignRequest(cp, 0)
	sigs, err := witnessB.Cosign(ctx, req) // over the transport: req.Marshal() and back
	var rewrite *audit.RewriteError
	if errors.As(err, &rewrite) {
		fmt.Println("alert:", rewrite.Origin, rewrite.Kind) // keep the evidence
		return
	}
	cp, _ = log.AddCosignatures(ctx, cp, sigs)
	fmt.Println("cosigned by site B:", cp.CosignedBy("keyquorum.example/site-b"))
	// Output:
	// cosigned by site B: true
}

// An inclusion proof shows one entry is in a cosigned checkpoint; anyone
// with the public keys can check it.
func ExampleLog_Prove() {
	ctx := context.Background()
	tmp, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(tmp)
	keyA, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyB, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	logA, _ := audit.NewVerifier("keyquorum.example/site-a", keyA.Public())
	store, _ := audit.OpenWitnessStore(filepath.Join(tmp, "witness-b"))
	defer store.Close()
	witnessB, _ := audit.NewWitness(audit.WitnessConfig{Name: "keyquorum.example/site-b", Signer: keyB, Logs: []note.Verifier{logA}, Store: store})
	log, _ := audit.Open(filepath.Join(tmp, "audit-a"), audit.Config{
		Origin: "keyquorum.example/site-a", Site: "site-a", Signer: keyA, Witnesses: []note.Verifier{witnessB.Verifier()},
	})
	defer log.Close()
	for i := range 5 {
		log.Append(ctx, audit.Record{Type: "sign.outcome", Fields: map[string]string{"n": fmt.Sprint(i)}})
	}
	cp, _ := log.Checkpoint(ctx)
	req, _ := log.CosignRequest(cp, 0)
	sigs, _ := witnessB.Cosign(ctx, req)
	log.AddCosignatures(ctx, cp, sigs)

	proof, err := log.Prove(ctx, 3, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	entry, in, err := audit.VerifyInclusion(proof, logA, []note.Verifier{witnessB.Verifier()}, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("entry %d (%s, n=%s) is in the tree of size %d\n", entry.Seq, entry.Type, entry.Fields["n"], in.Size)
	// Output:
	// entry 3 (sign.outcome, n=3) is in the tree of size 5
}
