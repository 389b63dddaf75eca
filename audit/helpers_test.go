package audit_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/keyquorum/keyquorum/audit"
)

const (
	originA  = "keyquorum.example/site-a"
	originB  = "keyquorum.example/site-b"
	witnessB = "keyquorum.example/site-b/witness"
	witnessC = "keyquorum.example/site-c/witness"
)

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// site is one site's log and key, with the directory it lives in.
type site struct {
	dir string
	key *ecdsa.PrivateKey
	cfg audit.Config
	log *audit.Log
}

// newSite creates a log for originA in a fresh directory.
func newSite(t testing.TB, mutate ...func(*audit.Config)) *site {
	t.Helper()
	s := &site{dir: filepath.Join(t.TempDir(), "audit"), key: newKey(t)}
	s.cfg = audit.Config{Origin: originA, Site: "site-a", Signer: s.key}
	for _, f := range mutate {
		f(&s.cfg)
	}
	s.open(t)
	t.Cleanup(func() { s.close(t) })
	return s
}

func (s *site) open(t testing.TB) {
	t.Helper()
	l, err := audit.Open(s.dir, s.cfg)
	if err != nil {
		t.Fatalf("Open %s: %v", s.dir, err)
	}
	s.log = l
}

func (s *site) close(t testing.TB) {
	t.Helper()
	if s.log != nil {
		if err := s.log.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		s.log = nil
	}
}

func (s *site) reopen(t testing.TB) {
	t.Helper()
	s.close(t)
	s.open(t)
}

func (s *site) verifier(t testing.TB) note.Verifier {
	t.Helper()
	v, err := audit.NewVerifier(s.cfg.Origin, s.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// appendN appends n entries numbered from the log's size.
func (s *site) appendN(t testing.TB, n int) {
	t.Helper()
	for range n {
		seq := s.log.Size()
		if _, err := s.log.Append(context.Background(), audit.Record{
			Type:   "sign.proposal",
			Fields: map[string]string{"n": strconv.FormatUint(seq, 10), "digest": fmt.Sprintf("%064x", seq)},
		}); err != nil {
			t.Fatalf("Append %d: %v", seq, err)
		}
	}
}

func (s *site) checkpoint(t testing.TB) *audit.Checkpoint {
	t.Helper()
	c, err := s.log.Checkpoint(context.Background())
	if err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	return c
}

// verify runs Verify on the site's directory.
func (s *site) verify(t testing.TB, opts audit.VerifyOptions) (*audit.Report, error) {
	t.Helper()
	if opts.Log == nil {
		opts.Log = s.verifier(t)
	}
	return audit.Verify(context.Background(), s.dir, opts)
}

// rawRecord is a record of the entries or checkpoints file, read and
// written the way an attacker with the files would (FORMAT.md).
type rawRecord struct {
	typ  byte
	a, b []byte
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (r rawRecord) encode() []byte {
	out := []byte{r.typ}
	out = binary.BigEndian.AppendUint32(out, uint32(len(r.a)))
	out = binary.BigEndian.AppendUint32(out, uint32(len(r.b)))
	out = append(out, r.a...)
	out = append(out, r.b...)
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, castagnoli))
}

func readRecords(t testing.TB, path string) []rawRecord {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []rawRecord
	for len(b) > 0 {
		la := int(binary.BigEndian.Uint32(b[1:5]))
		lb := int(binary.BigEndian.Uint32(b[5:9]))
		out = append(out, rawRecord{typ: b[0], a: b[9 : 9+la], b: b[9+la : 9+la+lb]})
		b = b[9+la+lb+4:]
	}
	return out
}

func writeRecords(t testing.TB, path string, recs []rawRecord) {
	t.Helper()
	var b []byte
	for _, r := range recs {
		b = append(b, r.encode()...)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// recordOffsets returns the start offset of each record in path.
func recordOffsets(t testing.TB, path string) []int64 {
	t.Helper()
	var offs []int64
	var off int64
	for _, r := range readRecords(t, path) {
		offs = append(offs, off)
		off += int64(len(r.encode()))
	}
	return offs
}

// dropCaches removes the index and hashes files, as an attacker who
// rewrites entries would to hide the change from them.
func dropCaches(t testing.TB, dir string) {
	t.Helper()
	for _, name := range []string{"index", "hashes"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// wantVerifyError checks that err is a *audit.VerifyError with the given
// sentinel, entry and checkpoint.
func wantVerifyError(t testing.TB, err error, sentinel error, entry int64, checkpoint int) {
	t.Helper()
	var ve *audit.VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a *VerifyError", err)
	}
	if !errors.Is(err, sentinel) || ve.Entry != entry || ve.Checkpoint != checkpoint {
		t.Fatalf("Verify: %v\nwant %v at entry %d, checkpoint %d; got entry %d, checkpoint %d", err, sentinel, entry, checkpoint, ve.Entry, ve.Checkpoint)
	}
}

// fixedClock returns a clock starting at t0 that advances by step on each
// call.
func fixedClock(t0 time.Time, step time.Duration) func() time.Time {
	var n int64
	return func() time.Time {
		n++
		return t0.Add(time.Duration(n) * step)
	}
}
