package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/keyquorum/keyquorum/audit"
)

func loadVectors(f *testing.F) vectors {
	f.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		f.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		f.Fatal(err)
	}
	return v
}

// FuzzParseEntry: any input gives an entry that re-encodes to itself, or
// ErrCorrupted; never a panic.
func FuzzParseEntry(f *testing.F) {
	for _, e := range loadVectors(f).Entries {
		f.Add([]byte(e))
	}
	f.Add([]byte(`{"v":1,"seq":0,"time":"2026-12-04T10:00:00Z","site":"s","type":"t","detail":{"id":"00000000000000000000000000000000","sha256":"0000000000000000000000000000000000000000000000000000000000000000","size":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := audit.ParseEntry(b)
		if err != nil {
			if !errors.Is(err, audit.ErrCorrupted) {
				t.Fatalf("ParseEntry error %v is not ErrCorrupted", err)
			}
			return
		}
		if string(e.JSON()) != string(b) {
			t.Fatalf("accepted entry does not round-trip")
		}
	})
}

// FuzzParseCosignRequest: a parsed request marshals back to its input.
func FuzzParseCosignRequest(f *testing.F) {
	f.Add([]byte(loadVectors(f).CosignRequest))
	f.Add([]byte("old 0\n\nx\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := audit.ParseCosignRequest(b)
		if err != nil {
			if !errors.Is(err, audit.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if string(r.Marshal()) != string(b) {
			t.Fatalf("request does not round-trip")
		}
	})
}

// FuzzWitnessCosign feeds arbitrary requests to a witness of the vector
// log: no panic, and only the vector's own checkpoint is ever cosigned.
func FuzzWitnessCosign(f *testing.F) {
	v := loadVectors(f)
	f.Add([]byte(v.CosignRequest))
	f.Add([]byte("old 0\n\n" + v.Checkpoint))
	lv, err := audit.ParseVerifierKey(v.LogVKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := audit.ParseCosignRequest(b)
		if err != nil {
			return
		}
		w := newWitness(t, witnessC, lv)
		sigs, err := w.w.Cosign(context.Background(), req)
		if err != nil {
			return
		}
		cp, err := audit.OpenCheckpoint(append(req.Checkpoint, sigs...), lv, w.w.Verifier())
		if err != nil || len(cp.Cosignatures) != 1 {
			t.Fatalf("witness cosigned something that does not verify: %v", err)
		}
	})
}

// FuzzOpenCheckpoint: arbitrary signed notes never verify unless they
// carry the log's signature, and never panic.
func FuzzOpenCheckpoint(f *testing.F) {
	v := loadVectors(f)
	f.Add([]byte(v.Checkpoint))
	lv, _ := audit.ParseVerifierKey(v.LogVKey)
	wv, _ := audit.ParseVerifierKey(v.WitnessVKey)
	f.Fuzz(func(t *testing.T, b []byte) {
		cp, err := audit.OpenCheckpoint(b, lv, wv)
		if err == nil && cp.Text() != v.Checkpoint[:len(cp.Text())] {
			t.Fatalf("a checkpoint other than the signed one verified:\n%s", b)
		}
	})
}

// FuzzOpen writes arbitrary bytes as a log's entries file: Open either
// refuses it with an error or opens a log that Verify accepts.
func FuzzOpen(f *testing.F) {
	v := loadVectors(f)
	key := parseKey(f, v.LogKey)
	dir := f.TempDir()
	seed := filepath.Join(dir, "seed")
	l, err := audit.Open(seed, audit.Config{Origin: originA, Site: "site-a", Signer: key})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		l.Append(context.Background(), audit.Record{Type: "t", Fields: map[string]string{"i": string(rune('0' + i))}})
	}
	l.Close()
	b, _ := os.ReadFile(filepath.Join(seed, "entries"))
	f.Add(b)
	f.Add(b[:len(b)-3])
	lv, _ := audit.ParseVerifierKey(v.LogVKey)
	f.Fuzz(func(t *testing.T, entries []byte) {
		d := filepath.Join(t.TempDir(), "log")
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "entries"), entries, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := audit.Open(d, audit.Config{Origin: originA, Site: "site-a", Signer: key})
		if err != nil {
			return
		}
		l.Close()
		if _, err := audit.Verify(context.Background(), d, audit.VerifyOptions{Log: lv, Witnesses: []note.Verifier{}}); err != nil {
			t.Fatalf("Open accepted a log that Verify refuses: %v", err)
		}
	})
}
