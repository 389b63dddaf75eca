package audit_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/keyquorum/keyquorum/audit"
)

// auditedSite is a site with 25 entries and checkpoint records
//
//	0: size 10    1: size 10, cosigned by B
//	2: size 20    3: size 20, cosigned by B
//	4: size 25
//
// All entries carry the same time, so only the tree (not time order)
// can reveal reordering.
type auditedSite struct {
	*site
	wit *witness
}

func newAuditedSite(t *testing.T) *auditedSite {
	t.Helper()
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	wkey := newKey(t)
	wv, err := audit.NewCosignatureVerifier(witnessB, wkey.Public())
	if err != nil {
		t.Fatal(err)
	}
	s := newSite(t, func(c *audit.Config) {
		c.Now = fixedClock(t0, 0)
		c.Witnesses = []note.Verifier{wv}
	})
	w := newWitnessWithKey(t, witnessB, wkey, s.verifier(t))
	a := &auditedSite{site: s, wit: w}
	s.appendN(t, 10)
	a.cosign(t, s.checkpoint(t))
	s.appendN(t, 10)
	a.cosign(t, s.checkpoint(t))
	s.appendN(t, 5)
	s.checkpoint(t)
	s.close(t)
	if _, err := s.verify(t, audit.VerifyOptions{Witnesses: []note.Verifier{wv}}); err != nil {
		t.Fatalf("Verify of the untouched log: %v", err)
	}
	return a
}

func (a *auditedSite) cosign(t *testing.T, cp *audit.Checkpoint) {
	t.Helper()
	got, err := cosign(t, a.site, a.wit, cp)
	if err != nil {
		t.Fatalf("cosign: %v", err)
	}
	if len(got.Cosignatures) != 1 {
		t.Fatalf("checkpoint has %d cosignatures", len(got.Cosignatures))
	}
}

func (a *auditedSite) path(name string) string { return filepath.Join(a.dir, name) }

// editEntry rewrites entry i's JSON with f and recomputes the record's
// CRC, as an attacker who knows the format does.
func (a *auditedSite) editEntry(t *testing.T, i int, f func(string) string) {
	t.Helper()
	recs := readRecords(t, a.path("entries"))
	recs[i].a = []byte(f(string(recs[i].a)))
	writeRecords(t, a.path("entries"), recs)
}

// renumber rewrites every entry's seq to its position (and the CRCs).
func (a *auditedSite) renumber(t *testing.T) {
	t.Helper()
	recs := readRecords(t, a.path("entries"))
	for i := range recs {
		s := string(recs[i].a)
		start := strings.Index(s, `"seq":`) + len(`"seq":`)
		end := start + strings.Index(s[start:], ",")
		recs[i].a = []byte(s[:start] + strconv.Itoa(i) + s[end:])
	}
	writeRecords(t, a.path("entries"), recs)
}

// checkpointSize returns the size in a checkpoint record's note.
func checkpointSize(t *testing.T, r rawRecord) uint64 {
	t.Helper()
	lines := strings.Split(string(r.a), "\n")
	n, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// forgeTail replaces the entries from keep on with forged ones and signs a
// checkpoint over the new history with the site's own key, as a site
// operator with access to the HSM could. The checkpoints that covered the
// old tail are dropped; keepOld puts them back in front of the new one.
func (a *auditedSite) forgeTail(t *testing.T, keep, forged int, keepOld bool) *audit.Checkpoint {
	t.Helper()
	entries := readRecords(t, a.path("entries"))
	writeRecords(t, a.path("entries"), entries[:keep])
	dropCaches(t, a.dir)
	oldCps := readRecords(t, a.path("checkpoints"))
	var kept []rawRecord
	for _, r := range oldCps {
		if checkpointSize(t, r) <= uint64(keep) {
			kept = append(kept, r)
		}
	}
	writeRecords(t, a.path("checkpoints"), kept)
	a.open(t)
	for i := range forged {
		if _, err := a.log.Append(context.Background(), audit.Record{Type: "sign.proposal", Fields: map[string]string{"forged": strconv.Itoa(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	cp := a.checkpoint(t)
	a.close(t)
	if keepOld {
		now := readRecords(t, a.path("checkpoints"))
		writeRecords(t, a.path("checkpoints"), append(oldCps, now[len(kept):]...))
	}
	return cp
}

func TestVerify_NamesTheTamperedEntryOrCheckpoint(t *testing.T) {
	flipCRCFixed := func(s string) string { return strings.Replace(s, `"digest":"000`, `"digest":"100`, 1) }
	for _, tc := range []struct {
		name       string
		attack     func(t *testing.T, a *auditedSite)
		sentinel   error
		entry      int64
		checkpoint int
	}{
		{"flip a byte of an early entry", func(t *testing.T, a *auditedSite) {
			flipByte(t, a.path("entries"), recordOffsets(t, a.path("entries"))[3]+40)
		}, audit.ErrCorrupted, 3, -1},
		{"flip a byte of the last entry", func(t *testing.T, a *auditedSite) {
			flipByte(t, a.path("entries"), recordOffsets(t, a.path("entries"))[24]+40)
		}, audit.ErrCorrupted, 24, -1},
		{"flip a byte and fix the CRC", func(t *testing.T, a *auditedSite) {
			a.editEntry(t, 17, flipCRCFixed)
		}, audit.ErrCorrupted, 17, -1},
		{"flip a byte, fix the CRC, drop the caches", func(t *testing.T, a *auditedSite) {
			a.editEntry(t, 17, flipCRCFixed)
			dropCaches(t, a.dir)
		}, audit.ErrInconsistent, -1, 3},
		{"flip a byte of the last entry, fix the CRC, drop the caches", func(t *testing.T, a *auditedSite) {
			a.editEntry(t, 24, flipCRCFixed)
			dropCaches(t, a.dir)
		}, audit.ErrInconsistent, -1, 4},
		{"backdate an entry, fix the CRC, drop the caches", func(t *testing.T, a *auditedSite) {
			a.editEntry(t, 4, func(s string) string {
				return strings.Replace(s, `"time":"2026-12-04T10:00:00Z"`, `"time":"2026-12-04T09:00:00Z"`, 1)
			})
			dropCaches(t, a.dir)
		}, audit.ErrCorrupted, 4, -1},
		{"delete an entry", func(t *testing.T, a *auditedSite) {
			recs := readRecords(t, a.path("entries"))
			writeRecords(t, a.path("entries"), append(recs[:5:5], recs[6:]...))
		}, audit.ErrCorrupted, 5, -1},
		{"delete an entry and drop the caches", func(t *testing.T, a *auditedSite) {
			recs := readRecords(t, a.path("entries"))
			writeRecords(t, a.path("entries"), append(recs[:5:5], recs[6:]...))
			dropCaches(t, a.dir)
		}, audit.ErrCorrupted, 5, -1},
		{"delete an entry and renumber", func(t *testing.T, a *auditedSite) {
			recs := readRecords(t, a.path("entries"))
			writeRecords(t, a.path("entries"), append(recs[:5:5], recs[6:]...))
			a.renumber(t)
		}, audit.ErrCorrupted, 5, -1},
		{"delete an entry, renumber, drop the caches", func(t *testing.T, a *auditedSite) {
			recs := readRecords(t, a.path("entries"))
			writeRecords(t, a.path("entries"), append(recs[:5:5], recs[6:]...))
			a.renumber(t)
			dropCaches(t, a.dir)
		}, audit.ErrInconsistent, -1, 1},
		{"reorder two entries", func(t *testing.T, a *auditedSite) {
			recs := readRecords(t, a.path("entries"))
			recs[3], recs[7] = recs[7], recs[3]
			writeRecords(t, a.path("entries"), recs)
		}, audit.ErrCorrupted, 3, -1},
		{"reorder two entries, renumber, drop the caches", func(t *testing.T, a *auditedSite) {
			recs := readRecords(t, a.path("entries"))
			recs[3], recs[7] = recs[7], recs[3]
			writeRecords(t, a.path("entries"), recs)
			a.renumber(t)
			dropCaches(t, a.dir)
		}, audit.ErrInconsistent, -1, 1},
		{"truncate the tail", func(t *testing.T, a *auditedSite) {
			offs := recordOffsets(t, a.path("entries"))
			if err := os.Truncate(a.path("entries"), offs[21]); err != nil {
				t.Fatal(err)
			}
		}, audit.ErrInconsistent, -1, 4},
		{"truncate the tail inside a record", func(t *testing.T, a *auditedSite) {
			offs := recordOffsets(t, a.path("entries"))
			if err := os.Truncate(a.path("entries"), offs[24]+7); err != nil {
				t.Fatal(err)
			}
		}, audit.ErrCorrupted, 24, -1},
		{"replace the tail and re-sign it with the site's key", func(t *testing.T, a *auditedSite) {
			a.forgeTail(t, 15, 12, true)
		}, audit.ErrInconsistent, -1, 3},
		{"re-sign the same size over another tail", func(t *testing.T, a *auditedSite) {
			a.forgeTail(t, 15, 10, true)
		}, audit.ErrInconsistent, -1, 5},
		{"flip a byte of a checkpoint signature", func(t *testing.T, a *auditedSite) {
			recs := readRecords(t, a.path("checkpoints"))
			sig := bytes.LastIndex(recs[2].a, []byte(" ")) + 10
			recs[2].a[sig] ^= 0x01
			writeRecords(t, a.path("checkpoints"), recs)
		}, audit.ErrBadSignature, -1, 2},
		{"sign a checkpoint with another key", func(t *testing.T, a *auditedSite) {
			recs := readRecords(t, a.path("checkpoints"))
			other := newSite(t)
			other.appendN(t, 25)
			cp := other.checkpoint(t)
			writeRecords(t, a.path("checkpoints"), append(recs, rawRecord{typ: 2, a: cp.Note()}))
		}, audit.ErrBadSignature, -1, 5},
		{"keep only the witness's cosignature on a checkpoint", func(t *testing.T, a *auditedSite) {
			recs := readRecords(t, a.path("checkpoints"))
			var kept []string
			for _, line := range strings.SplitAfter(string(recs[3].a), "\n") {
				if !strings.HasPrefix(line, "— "+originA+" ") {
					kept = append(kept, line)
				}
			}
			recs[3].a = []byte(strings.Join(kept, ""))
			writeRecords(t, a.path("checkpoints"), recs)
		}, audit.ErrBadSignature, -1, 3},
		{"flip a byte of a cosignature", func(t *testing.T, a *auditedSite) {
			recs := readRecords(t, a.path("checkpoints"))
			sig := bytes.LastIndex(recs[3].a, []byte(" ")) + 20
			recs[3].a[sig] ^= 0x01
			writeRecords(t, a.path("checkpoints"), recs)
		}, audit.ErrBadSignature, -1, 3},
		{"remove a checkpoint record's end", func(t *testing.T, a *auditedSite) {
			recs := readRecords(t, a.path("checkpoints"))
			recs[1].a = recs[1].a[:len(recs[1].a)-20]
			writeRecords(t, a.path("checkpoints"), recs)
		}, audit.ErrMalformed, -1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAuditedSite(t)
			tc.attack(t, a)
			_, err := a.verify(t, audit.VerifyOptions{Witnesses: []note.Verifier{a.wit.w.Verifier()}})
			wantVerifyError(t, err, tc.sentinel, tc.entry, tc.checkpoint)
		})
	}
}

// TestVerify_TrustedCheckpointCatchesAFullRewrite: a site that rewrites its
// tail, drops the checkpoints that covered it and signs the new history
// with its own key leaves a log that is consistent in itself. The
// checkpoint the witness kept shows the rewrite.
func TestVerify_TrustedCheckpointCatchesAFullRewrite(t *testing.T) {
	a := newAuditedSite(t)
	seen, err := a.wit.store.LastSeen(context.Background(), originA)
	if err != nil || seen == nil {
		t.Fatalf("witness has no checkpoint of %s: %v", originA, err)
	}
	a.forgeTail(t, 15, 12, false)
	rep, err := a.verify(t, audit.VerifyOptions{})
	if err != nil {
		t.Fatalf("Verify without outside knowledge: %v (a consistent rewrite cannot be seen from the log alone)", err)
	}
	if rep.Entries != 27 || rep.Latest.Size != 27 || len(rep.Latest.Cosignatures) != 0 {
		t.Fatalf("report %+v", rep)
	}
	_, err = a.verify(t, audit.VerifyOptions{Trusted: [][]byte{seen}})
	wantVerifyError(t, err, audit.ErrInconsistent, -1, -1)
	if !strings.Contains(err.Error(), "trusted checkpoint 0") {
		t.Fatalf("error does not name the trusted checkpoint: %v", err)
	}
	// A truncation below the trusted checkpoint is named the same way.
	b := newAuditedSite(t)
	seen, _ = b.wit.store.LastSeen(context.Background(), originA)
	b.forgeTail(t, 15, 0, false)
	_, err = b.verify(t, audit.VerifyOptions{Trusted: [][]byte{seen}})
	wantVerifyError(t, err, audit.ErrInconsistent, -1, -1)
	if !strings.Contains(err.Error(), "were removed") {
		t.Fatalf("error does not say entries were removed: %v", err)
	}
}

func TestVerify_ReportsUnsignedEntriesAndTornTail(t *testing.T) {
	s := newSite(t)
	s.appendN(t, 4)
	s.checkpoint(t)
	s.appendN(t, 3)
	s.close(t)
	entries := filepath.Join(s.dir, "entries")
	f, err := os.OpenFile(entries, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{1, 0, 0, 0, 50}) // a crash mid-append
	f.Close()
	rep, err := s.verify(t, audit.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != 7 || rep.Unsigned != 3 || rep.TornBytes != 5 || rep.Latest.Size != 4 || rep.LatestCosigned != nil {
		t.Fatalf("report %+v", rep)
	}
}

func TestVerify_WorksOnACopyWithOtherPermissions(t *testing.T) {
	s := newSite(t)
	s.appendN(t, 3)
	s.checkpoint(t)
	s.close(t)
	copyDir := filepath.Join(t.TempDir(), "copy")
	if err := os.Mkdir(copyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"entries", "checkpoints"} { // no caches
		b, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(copyDir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	vkey, err := audit.VerifierKey(s.verifier(t))
	if err != nil {
		t.Fatal(err)
	}
	v, err := audit.ParseVerifierKey(vkey)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(context.Background(), copyDir, audit.VerifyOptions{Log: v})
	if err != nil || rep.Entries != 3 {
		t.Fatalf("Verify of a copy: %+v, %v", rep, err)
	}
	// The wrong key finds no signature it trusts.
	_, err = audit.Verify(context.Background(), copyDir, audit.VerifyOptions{Log: newSite(t).verifier(t)})
	wantVerifyError(t, err, audit.ErrBadSignature, -1, 0)
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x20
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestVerify_RequireWitnessesNamesAMissingCosigner: a site that drops the
// cosigned records from its checkpoints file leaves a log that verifies
// with its own key alone. An auditor who requires its witnesses' keys
// finds the witness that cosigned nothing, by name.
func TestVerify_RequireWitnessesNamesAMissingCosigner(t *testing.T) {
	a := newAuditedSite(t)
	wv := a.wit.w.Verifier()
	rep, err := a.verify(t, audit.VerifyOptions{Witnesses: []note.Verifier{wv}, RequireWitnesses: true})
	if err != nil || rep.CosignedBy[witnessB] != 20 || len(rep.CosignedBy) != 1 {
		t.Fatalf("untouched log: %+v, %v; want cosigned by %s up to size 20", rep, err, witnessB)
	}
	// A second witness that never cosigned is named.
	other, err := audit.NewCosignatureVerifier(witnessC, newKey(t).Public())
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.verify(t, audit.VerifyOptions{Witnesses: []note.Verifier{wv, other}, RequireWitnesses: true})
	wantVerifyError(t, err, audit.ErrNotCosigned, -1, -1)
	if !strings.Contains(err.Error(), witnessC) {
		t.Fatalf("error %v does not name %s", err, witnessC)
	}

	recs := readRecords(t, a.path("checkpoints"))
	writeRecords(t, a.path("checkpoints"), []rawRecord{recs[0], recs[2], recs[4]})
	if _, err := a.verify(t, audit.VerifyOptions{Witnesses: []note.Verifier{wv}}); err != nil {
		t.Fatalf("without RequireWitnesses the stripped log verifies (the site's own signatures hold): %v", err)
	}
	_, err = a.verify(t, audit.VerifyOptions{Witnesses: []note.Verifier{wv}, RequireWitnesses: true})
	wantVerifyError(t, err, audit.ErrNotCosigned, -1, -1)
	if !strings.Contains(err.Error(), witnessB) {
		t.Fatalf("error %v does not name %s", err, witnessB)
	}
}
