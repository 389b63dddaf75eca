package keyquorum_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/audit"
)

// secretIntent stands for an intent a site authorized: it must appear in
// no file of the audit log.
var secretIntent = []byte(`{"intent":"send 12.5 BTC to bcrt1q-the-confidential-destination"}`)

// startOneSite starts a committee of two sites (the smallest the
// transport takes) and returns the first.
func startOneSite(t *testing.T) *site {
	t.Helper()
	sites := newSites(t, 2)
	for _, s := range sites {
		s.start(t)
	}
	return sites[0]
}

// recordSecret appends an entry whose detail is secretIntent and returns
// its sequence number.
func recordSecret(t *testing.T, ctx context.Context, s *site) uint64 {
	t.Helper()
	if err := keyquorum.RecordAuditDetail(ctx, s.node, "app.detail-test", map[string]string{"what": "test"}, bytes.Clone(secretIntent)); err != nil {
		t.Fatal(err)
	}
	return s.node.AuditLog().Size() - 1
}

// TestAuditDetail_OpensAfterSealKeyRotation: a detail part sealed by the
// site opens through Node.AuditEntry, is stored only sealed, and still
// opens after the seal key was rotated (the old key destroyed) and the
// site restarted: the data key it was sealed under is a store record,
// which the rotation re-sealed, while the sealed bytes in the log stay as
// they were.
func TestAuditDetail_OpensAfterSealKeyRotation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := startOneSite(t)
	seq := recordSecret(t, ctx, s)

	e, d, err := s.node.AuditEntry(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	if e.Detail == nil || !bytes.Equal(d, secretIntent) {
		t.Fatalf("entry %d: detail ref %+v, opened %q; want %q", seq, e.Detail, d, secretIntent)
	}
	sealed, err := s.node.AuditLog().SealedDetail(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	dir := s.node.AuditLog().Dir()
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, secretIntent) || bytes.Contains(b, []byte("confidential-destination")) {
			t.Fatalf("%s holds the detail in plaintext", f.Name())
		}
	}

	if _, err := s.node.RotateSealKey(ctx); err != nil {
		t.Fatal(err)
	}
	s.stop(t)
	s.start(t) // a new start: a new data key, the old one only in the store
	e2, d2, err := s.node.AuditEntry(ctx, seq)
	if err != nil {
		t.Fatalf("entry %d after the seal-key rotation: %v", seq, err)
	}
	if !bytes.Equal(d2, secretIntent) || e2.Detail.SHA256 != e.Detail.SHA256 {
		t.Fatalf("entry %d after the rotation: detail %+v, opened %q; want the same sealed bytes opening to %q", seq, e2.Detail, d2, secretIntent)
	}
	again, err := s.node.AuditLog().SealedDetail(ctx, seq)
	if err != nil || !bytes.Equal(again, sealed) {
		t.Fatalf("sealed bytes changed by the rotation (%v)", err)
	}
	// One data key per start, each a sealed store record.
	if n, err := keyquorum.OpenSealedRecords(ctx, s.node, "auditkey"); err != nil || n != 2 {
		t.Fatalf("audit data keys in the store after two starts: %d, %v; want 2", n, err)
	}
}

// TestAuditDetail_TamperedDetailFails: one byte of a stored sealed detail
// changed (with the record's CRC made to match, as a forger would) makes
// the log fail verification at that entry, which needs no secret, and
// makes Node.AuditEntry fail; the sealer itself refuses changed bytes and
// bytes moved to another entry.
func TestAuditDetail_TamperedDetailFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := startOneSite(t)
	seq := recordSecret(t, ctx, s)
	l := s.node.AuditLog()
	e, err := l.Entry(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := l.SealedDetail(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("Sealer", func(t *testing.T) {
		flipped := bytes.Clone(sealed)
		flipped[len(flipped)/2] ^= 0x01
		if _, err := keyquorum.OpenAuditDetail(ctx, s.node, e.Detail.ID, flipped); !errors.Is(err, keyquorum.ErrAuditDetail) {
			t.Errorf("changed sealed detail: %v; want ErrAuditDetail", err)
		}
		other := "0123456789abcdef0123456789abcdef"
		if _, err := keyquorum.OpenAuditDetail(ctx, s.node, other, sealed); !errors.Is(err, keyquorum.ErrAuditDetail) {
			t.Errorf("sealed detail moved to another entry: %v; want ErrAuditDetail", err)
		}
		if pt, err := keyquorum.OpenAuditDetail(ctx, s.node, e.Detail.ID, sealed); err != nil || !bytes.Equal(pt, secretIntent) {
			t.Errorf("untouched sealed detail: %q, %v", pt, err)
		}
	})

	t.Run("StoredBytes", func(t *testing.T) {
		path := filepath.Join(l.Dir(), "entries")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// The record: type || u32 len(entry) || u32 len(detail) || entry || detail || CRC-32C.
		at := bytes.Index(b, e.JSON())
		if at < 9 {
			t.Fatalf("entry %d not found in %s", seq, path)
		}
		start, end := at-9, at+len(e.JSON())+len(sealed)+4
		b[at+len(e.JSON())+len(sealed)/2] ^= 0x01
		binary.BigEndian.PutUint32(b[end-4:], crc32.Checksum(b[start:end-4], crc32.MakeTable(crc32.Castagnoli)))
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}

		v, err := s.node.AuditVerifier()
		if err != nil {
			t.Fatal(err)
		}
		_, err = audit.Verify(ctx, l.Dir(), audit.VerifyOptions{Log: v})
		var ve *audit.VerifyError
		if !errors.Is(err, audit.ErrCorrupted) || !errors.As(err, &ve) || ve.Entry != int64(seq) {
			t.Errorf("verify after changing the sealed detail of entry %d: %v; want ErrCorrupted at that entry", seq, err)
		}
		_, d, err := s.node.AuditEntry(ctx, seq)
		if !errors.Is(err, audit.ErrCorrupted) || d != nil {
			t.Errorf("AuditEntry(%d) after the change: %q, %v; want ErrCorrupted", seq, d, err)
		}
	})
}
