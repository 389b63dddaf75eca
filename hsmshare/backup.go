package hsmshare

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// A store backup is a tar stream (FORMAT.md, "Store backup"):
//
//	manifest.json                          what the backup holds
//	files/<name>                           the caller's files, in manifest order
//	records/<kind>/<id>/<version>.blob     the sealed blobs as stored, sorted
//	end.json                               entry count and digest of all the above
const (
	backupFormat       = 1
	backupType         = "keyquorum-store-backup"
	backupManifestName = "manifest.json"
	backupEndName      = "end.json"
	backupFilesDir     = "files/"
	backupRecordsDir   = "records/"
	backupDigestTag    = "keyquorum/store-backup/v1\x00"
)

// Limits of a store backup. [ReadBackup] refuses anything larger, so a
// hostile or damaged file cannot make it allocate without bound.
const (
	// MaxBackupSize bounds the content of all entries of a backup
	// together.
	MaxBackupSize = 256 << 20
	// MaxBackupRecords bounds the record versions in a backup.
	MaxBackupRecords = 100_000
	// MaxBackupFiles bounds the caller's files in a backup.
	MaxBackupFiles = 16
	// MaxBackupFileSize bounds each of the caller's files.
	MaxBackupFileSize = 1 << 20
	// maxBackupMetaSize bounds manifest.json and end.json.
	maxBackupMetaSize = 64 << 10
)

// ErrBadBackup means a backup is not one [ReadBackup] or [RestoreStore]
// accepts: truncated, damaged, with an unknown or misplaced entry, over a
// limit, of an unknown format, or holding a record of a kind that is never
// restored. Nothing is written when it is returned.
var ErrBadBackup = errors.New("hsmshare: not a valid store backup")

// ErrRestoreConflict means a restore was refused because of what the
// target store holds: records (restore onto an empty store, or ask to
// replace), another seal key, or an unfinished rotation. Nothing is
// written when it is returned.
var ErrRestoreConflict = errors.New("hsmshare: store cannot take this restore")

// RecordRef names one stored version of a record.
type RecordRef struct {
	// Kind and ID name the record ([ValidName] rules).
	Kind string `json:"kind"`
	ID   string `json:"id"`
	// Version is the version number.
	Version uint64 `json:"version"`
}

// String returns "kind/id version N".
func (r RecordRef) String() string { return fmt.Sprintf("%s/%s version %d", r.Kind, r.ID, r.Version) }

func (r RecordRef) entryName() string {
	return backupRecordsDir + r.Kind + "/" + r.ID + "/" + versionFile(r.Version)
}

func compareRefs(a, b RecordRef) int {
	if c := strings.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	if c := strings.Compare(a.ID, b.ID); c != 0 {
		return c
	}
	switch {
	case a.Version < b.Version:
		return -1
	case a.Version > b.Version:
		return 1
	}
	return 0
}

// BackupOptions are the choices of [Store.Backup].
type BackupOptions struct {
	// Exclude lists record kinds left out of the backup: records that
	// must never come back, such as single-use material.
	Exclude []string
	// Files are the caller's files carried beside the records, by name
	// (ValidName rules), for example the configuration needed to rebuild
	// the application around the store. They are stored in the clear:
	// never put a secret in them. At most MaxBackupFiles files of at
	// most MaxBackupFileSize bytes each.
	Files map[string][]byte
	// Now is the backup's creation time (default time.Now).
	Now func() time.Time
}

// BackupInfo describes a store backup. It holds nothing secret.
type BackupInfo struct {
	// Party is the party every record is bound to.
	Party string `json:"party"`
	// SealKeyLabel and SealKeyID name the seal key every record is sealed
	// under (what the store's sealkey.json holds).
	SealKeyLabel string `json:"seal_key_label"`
	SealKeyID    string `json:"seal_key_id"`
	// Created is when the backup was taken.
	Created time.Time `json:"created"`
	// Excluded are the record kinds the backup leaves out.
	Excluded []string `json:"excluded_kinds"`
	// Files are the names of the caller's files, sorted.
	Files []string `json:"files"`
	// Records are the record versions, sorted by kind, ID and version.
	Records []RecordRef `json:"records"`
}

// backupManifest is manifest.json.
type backupManifest struct {
	Format   int       `json:"format"`
	Type     string    `json:"type"`
	Party    string    `json:"party"`
	SealKey  keyInfo   `json:"seal_key"`
	Created  time.Time `json:"created"`
	Excluded []string  `json:"excluded_kinds"`
	Files    []string  `json:"files"`
	Records  int       `json:"records"`
}

// backupEnd is end.json.
type backupEnd struct {
	Entries int    `json:"entries"`
	SHA256  string `json:"sha256"`
}

// backupDigest hashes every entry before end.json: for each, its name,
// a zero byte, its size (uint64) and its content.
type backupDigest struct{ h hash.Hash }

func newBackupDigest() backupDigest {
	d := backupDigest{h: sha256.New()}
	d.h.Write([]byte(backupDigestTag))
	return d
}

func (d backupDigest) add(name string, data []byte) {
	d.h.Write([]byte(name))
	d.h.Write([]byte{0})
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(data)))
	d.h.Write(n[:])
	d.h.Write(data)
}

func (d backupDigest) sum() string { return hex.EncodeToString(d.h.Sum(nil)) }

// Backup writes a point-in-time copy of the store to w as a tar stream
// (FORMAT.md, "Store backup"): the blobs exactly as stored, still sealed
// (nothing is opened to back it up), the seal key's label and ID, and
// opts.Files. Records of the kinds in opts.Exclude are left out. Every
// other operation on the store waits until Backup returns, so the copy
// is consistent; give it a fast writer (a buffer or a local file).
//
// Backup refuses while a seal-key rotation is unfinished (finish it with
// Rotate first) and fails, naming the file, on a stored blob that does
// not parse or is not bound to its own path: such a record could not be
// restored. A failed Backup may have written part of a stream to w; the
// stream then lacks its end entry and [ReadBackup] refuses it.
func (s *Store) Backup(ctx context.Context, w io.Writer, opts BackupOptions) (*BackupInfo, error) {
	for _, k := range opts.Exclude {
		if err := ValidName(k); err != nil {
			return nil, fmt.Errorf("hsmshare: backup: excluded kind: %w", err)
		}
	}
	if len(opts.Files) > MaxBackupFiles {
		return nil, fmt.Errorf("hsmshare: backup: %d files, at most %d", len(opts.Files), MaxBackupFiles)
	}
	names := make([]string, 0, len(opts.Files))
	for name, data := range opts.Files {
		if err := ValidName(name); err != nil {
			return nil, fmt.Errorf("hsmshare: backup: file name: %w", err)
		}
		if len(data) > MaxBackupFileSize {
			return nil, fmt.Errorf("hsmshare: backup: file %s is %d bytes, at most %d", name, len(data), MaxBackupFileSize)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("%w: store %s", ErrClosed, s.dir)
	}
	if s.journal != nil {
		return nil, fmt.Errorf("hsmshare: backup of store %s: a seal-key rotation to %q is unfinished; finish it (Rotate) and back up then", s.dir, s.journal.ToLabel)
	}
	var refs []RecordRef
	err := s.eachVersion(func(kind, id string, v uint64) error {
		if !slices.Contains(opts.Exclude, kind) {
			refs = append(refs, RecordRef{Kind: kind, ID: id, Version: v})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hsmshare: backup: %w", err)
	}
	if len(refs) > MaxBackupRecords {
		return nil, fmt.Errorf("hsmshare: backup of store %s: %d record versions, more than a backup holds (%d); prune old versions first", s.dir, len(refs), MaxBackupRecords)
	}
	slices.SortFunc(refs, compareRefs)
	created := now().UTC().Truncate(time.Second)
	excluded := slices.Sorted(slices.Values(opts.Exclude))
	excluded = slices.Compact(excluded)
	m := backupManifest{Format: backupFormat, Type: backupType, Party: s.party,
		SealKey: keyInfo{Format: journalFormat, Label: s.key.label, ID: s.key.ID()},
		Created: created, Excluded: excluded, Files: names, Records: len(refs)}
	if m.Excluded == nil {
		m.Excluded = []string{}
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(w)
	d := newBackupDigest()
	entries, total := 0, 0
	put := func(name string, data []byte) error {
		if total += len(data); total > MaxBackupSize {
			return fmt.Errorf("hsmshare: backup of store %s is larger than %d bytes, the most a backup holds", s.dir, MaxBackupSize)
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: created}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("hsmshare: backup: write %s: %w", name, err)
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("hsmshare: backup: write %s: %w", name, err)
		}
		d.add(name, data)
		entries++
		return nil
	}
	if err := put(backupManifestName, mb); err != nil {
		return nil, err
	}
	for _, name := range names {
		if err := put(backupFilesDir+name, opts.Files[name]); err != nil {
			return nil, err
		}
	}
	for _, r := range refs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		blob, err := s.backupBlob(r)
		if err != nil {
			return nil, err
		}
		if err := put(r.entryName(), blob); err != nil {
			return nil, err
		}
	}
	eb, err := json.Marshal(backupEnd{Entries: entries, SHA256: d.sum()})
	if err != nil {
		return nil, err
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: backupEndName, Mode: 0o600, Size: int64(len(eb)), ModTime: created}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("hsmshare: backup: write %s: %w", backupEndName, err)
	}
	if _, err := tw.Write(eb); err != nil {
		return nil, fmt.Errorf("hsmshare: backup: write %s: %w", backupEndName, err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("hsmshare: backup: %w", err)
	}
	return &BackupInfo{Party: s.party, SealKeyLabel: m.SealKey.Label, SealKeyID: m.SealKey.ID, Created: created,
		Excluded: m.Excluded, Files: names, Records: refs}, nil
}

// backupBlob reads one stored blob for a backup and checks, without
// opening it, that it names the store's seal key and its own record.
func (s *Store) backupBlob(r RecordRef) ([]byte, error) {
	p := filepath.Join(s.recordDir(r.Kind, r.ID), versionFile(r.Version))
	blob, err := readBlobFile(p)
	if err != nil {
		return nil, fmt.Errorf("hsmshare: backup of store %s: read %s: %w", s.dir, p, err)
	}
	info, err := InspectBlob(blob)
	if err != nil {
		return nil, fmt.Errorf("hsmshare: backup of store %s: %s (file %s): %w; delete or repair that record, then back up again", s.dir, r, p, err)
	}
	want := Header{Kind: r.Kind, KeyID: r.ID, PartyID: s.party, Version: r.Version}
	if info.Header != want || info.SealKeyID != s.key.ID() {
		return nil, fmt.Errorf("hsmshare: backup of store %s: %s (file %s): %w: the blob claims %s/%s version %d of party %q under seal key %s; delete or repair that record, then back up again",
			s.dir, r, p, ErrTampered, info.Header.Kind, info.Header.KeyID, info.Header.Version, info.Header.PartyID, info.SealKeyID)
	}
	return blob, nil
}

// Backup is a store backup read into memory by [ReadBackup] and checked
// for form: every entry is known, in place, within the limits, and the
// end entry's count and digest match. Its blobs are still sealed and not
// yet checked against any token; [RestoreStore] does that.
type Backup struct {
	info  BackupInfo
	files map[string][]byte
	blobs [][]byte // by index of info.Records
}

// Info describes the backup.
func (b *Backup) Info() BackupInfo {
	i := b.info
	i.Excluded = slices.Clone(i.Excluded)
	i.Files = slices.Clone(i.Files)
	i.Records = slices.Clone(i.Records)
	return i
}

// File returns a copy of one of the caller's files carried in the backup.
func (b *Backup) File(name string) ([]byte, bool) {
	d, ok := b.files[name]
	return bytes.Clone(d), ok
}

// ReadBackup reads a backup written by [Store.Backup] and checks its
// form. It reads at most MaxBackupSize bytes of content and refuses with
// [ErrBadBackup], naming the entry, anything else than what Store.Backup
// writes: an unknown, duplicate, misplaced or non-regular entry, a name
// that is not canonical (no "..", no absolute path), a blob that does not
// parse or is not bound to its own name and the manifest's party, an
// entry over its limit, and a stream that ends before its end entry or
// whose digest does not match.
func ReadBackup(r io.Reader) (*Backup, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadBackup}, args...)...)
	}
	tr := tar.NewReader(r)
	d := newBackupDigest()
	total, entries := 0, 0
	next := func(limit int64) (*tar.Header, []byte, error) {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil, nil, bad("the stream ends before its %s entry (truncated)", backupEndName)
		}
		if err != nil {
			return nil, nil, bad("entry %d: %v", entries+1, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil, nil, bad("entry %q is not a regular file (type %q)", truncateName(hdr.Name), hdr.Typeflag)
		}
		if hdr.Size < 0 || hdr.Size > limit || int64(total)+hdr.Size > MaxBackupSize {
			return nil, nil, bad("entry %q is %d bytes, over its limit", truncateName(hdr.Name), hdr.Size)
		}
		data := make([]byte, hdr.Size)
		if _, err := io.ReadFull(tr, data); err != nil {
			return nil, nil, bad("entry %q: %v (truncated)", truncateName(hdr.Name), err)
		}
		total += len(data)
		return hdr, data, nil
	}

	hdr, mb, err := next(maxBackupMetaSize)
	if err != nil {
		return nil, err
	}
	if hdr.Name != backupManifestName {
		return nil, bad("first entry is %q, not %s", truncateName(hdr.Name), backupManifestName)
	}
	var m backupManifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, bad("%s: %v", backupManifestName, err)
	}
	if m.Type != backupType {
		return nil, bad("%s: type %q, not %q", backupManifestName, truncateName(m.Type), backupType)
	}
	if m.Format != backupFormat {
		return nil, bad("%s: format %d; this version reads format %d", backupManifestName, m.Format, backupFormat)
	}
	if err := ValidPartyID(m.Party); err != nil {
		return nil, bad("%s: party: %v", backupManifestName, err)
	}
	if m.SealKey.Format != journalFormat || validLabel(m.SealKey.Label) != nil || m.SealKey.ID == "" || len(m.SealKey.ID) > 2*MaxNameLen {
		return nil, bad("%s: seal key is not valid", backupManifestName)
	}
	if m.Records < 0 || m.Records > MaxBackupRecords || len(m.Files) > MaxBackupFiles || len(m.Excluded) > MaxBackupRecords {
		return nil, bad("%s: %d records and %d files, over the limits", backupManifestName, m.Records, len(m.Files))
	}
	for _, k := range m.Excluded {
		if err := ValidName(k); err != nil {
			return nil, bad("%s: excluded kind: %v", backupManifestName, err)
		}
	}
	for i, name := range m.Files {
		if err := ValidName(name); err != nil {
			return nil, bad("%s: file name: %v", backupManifestName, err)
		}
		if i > 0 && m.Files[i-1] >= name {
			return nil, bad("%s: file names are not sorted and unique", backupManifestName)
		}
	}
	d.add(backupManifestName, mb)
	entries++

	b := &Backup{files: map[string][]byte{}, info: BackupInfo{Party: m.Party, SealKeyLabel: m.SealKey.Label,
		SealKeyID: m.SealKey.ID, Created: m.Created, Excluded: m.Excluded, Files: m.Files}}
	if b.info.Excluded == nil {
		b.info.Excluded = []string{}
	}
	if b.info.Files == nil {
		b.info.Files = []string{}
	}
	for _, name := range m.Files {
		hdr, data, err := next(MaxBackupFileSize)
		if err != nil {
			return nil, err
		}
		if hdr.Name != backupFilesDir+name {
			return nil, bad("entry %q where %s was expected", truncateName(hdr.Name), backupFilesDir+name)
		}
		d.add(hdr.Name, data)
		entries++
		b.files[name] = data
	}
	for i := 0; i < m.Records; i++ {
		hdr, blob, err := next(maxBlobSize)
		if err != nil {
			return nil, err
		}
		ref, ok := parseRecordEntry(hdr.Name)
		if !ok {
			return nil, bad("entry %q is not a record (records/<kind>/<id>/<version>.blob) where record %d of %d was expected", truncateName(hdr.Name), i+1, m.Records)
		}
		if n := len(b.info.Records); n > 0 && compareRefs(b.info.Records[n-1], ref) >= 0 {
			return nil, bad("record %s is out of order or repeated", ref)
		}
		if slices.Contains(m.Excluded, ref.Kind) {
			return nil, bad("record %s is of kind %s, which the manifest says is excluded", ref, ref.Kind)
		}
		info, err := InspectBlob(blob)
		if err != nil {
			return nil, fmt.Errorf("%w: record %s: %w", ErrBadBackup, ref, err)
		}
		if want := (Header{Kind: ref.Kind, KeyID: ref.ID, PartyID: m.Party, Version: ref.Version}); info.Header != want {
			return nil, fmt.Errorf("%w: record %s: %w: the blob claims %s/%s version %d of party %q", ErrBadBackup, ref, ErrTampered,
				info.Header.Kind, info.Header.KeyID, info.Header.Version, info.Header.PartyID)
		}
		d.add(hdr.Name, blob)
		entries++
		b.info.Records = append(b.info.Records, ref)
		b.blobs = append(b.blobs, blob)
	}
	hdr, eb, err := next(maxBackupMetaSize)
	if err != nil {
		return nil, err
	}
	if hdr.Name != backupEndName {
		return nil, bad("entry %q where %s was expected (the manifest counts %d records and %d files)", truncateName(hdr.Name), backupEndName, m.Records, len(m.Files))
	}
	var end backupEnd
	if err := json.Unmarshal(eb, &end); err != nil {
		return nil, bad("%s: %v", backupEndName, err)
	}
	if end.Entries != entries || end.SHA256 != d.sum() {
		return nil, bad("%s does not match the entries before it (damaged or altered backup)", backupEndName)
	}
	if _, err := tr.Next(); err != io.EOF {
		return nil, bad("something follows %s", backupEndName)
	}
	if b.info.Records == nil {
		b.info.Records = []RecordRef{}
	}
	return b, nil
}

// parseRecordEntry accepts only the canonical name of a record version:
// records/<kind>/<id>/<20 digits>.blob, kind and id by ValidName.
func parseRecordEntry(name string) (RecordRef, bool) {
	rest, ok := strings.CutPrefix(name, backupRecordsDir)
	if !ok || path.Clean(name) != name {
		return RecordRef{}, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || validRecord(parts[0], parts[1]) != nil {
		return RecordRef{}, false
	}
	v, ok := parseVersionFile(parts[2])
	if !ok {
		return RecordRef{}, false
	}
	return RecordRef{Kind: parts[0], ID: parts[1], Version: v}, true
}

// RestoreOptions are the choices of [RestoreStore].
type RestoreOptions struct {
	// Refuse lists record kinds that are never restored: a backup that
	// holds one is refused whole with [ErrBadBackup].
	Refuse []string
	// Replace lets the restore write into a store that already holds
	// records of the kinds the backup may carry. The backup's versions
	// replace the same versions in the store; every other version in the
	// store stays, so a newer version (a newer key epoch) is never
	// dropped and stays the one in use. Without Replace such a store is
	// refused with [ErrRestoreConflict].
	Replace bool
}

// RestoreResult says what [RestoreStore] did.
type RestoreResult struct {
	// Restored is how many record versions were written.
	Restored int `json:"restored"`
	// Replaced counts the versions of Restored that were already in the
	// store (Replace only).
	Replaced int `json:"replaced"`
	// Kept counts versions in the store that the backup does not hold
	// and that were left as they were (Replace only).
	Kept int `json:"kept"`
	// Newer are records whose newest version in the store is newer than
	// the backup's: the store's version stays in use (Replace only).
	Newer []RecordRef `json:"newer,omitempty"`
}

// RestoreStore writes the records of backup b into the store in dir for
// party, sealed under key, which must not be open: it takes the store's
// lock and fails with [ErrStoreLocked] while a [Store] (in this or
// another process) holds it.
//
// Before it writes anything it checks that b is for party, that it holds
// no record of a kind in opts.Refuse, and that every blob opens under key
// as the record its name says (the token authenticates each one; no
// plaintext is kept): a backup from another token or seal key fails with
// [ErrWrongSealKey], a damaged blob with [ErrTampered], each naming the
// record. It also refuses ([ErrRestoreConflict]) a store sealed under
// another key, one with an unfinished rotation, and, unless opts.Replace,
// one that already holds records of kinds the backup may carry.
//
// Each version is then written atomically and durably as [Store.Put]
// does, and sealkey.json is written for key if the store has none. A
// restore interrupted after this point leaves some records written;
// running it again with Replace finishes it. Nothing is deleted.
func RestoreStore(ctx context.Context, dir string, key *SealKey, party string, b *Backup, opts RestoreOptions) (*RestoreResult, error) {
	if key == nil || b == nil {
		return nil, errors.New("hsmshare: RestoreStore: nil seal key or backup")
	}
	if err := key.usable(); err != nil {
		return nil, err
	}
	if b.info.Party != party {
		return nil, fmt.Errorf("%w: the backup is of party %q, not %q", ErrRestoreConflict, b.info.Party, party)
	}
	for _, r := range b.info.Records {
		if slices.Contains(opts.Refuse, r.Kind) {
			return nil, fmt.Errorf("%w: it holds record %s, of kind %s, which is never restored", ErrBadBackup, r, r.Kind)
		}
	}
	if err := mkdirAllDurable(dir); err != nil {
		return nil, fmt.Errorf("hsmshare: restore: create store directory: %w", err)
	}
	s := &Store{dir: dir, party: party, key: key}
	if err := s.checkDirMode(); err != nil {
		return nil, err
	}
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer func() {
		_ = unlock(s.lockF)
		_ = s.lockF.Close()
	}()
	if err := mkdirDurable(filepath.Join(dir, recordsDir)); err != nil {
		return nil, fmt.Errorf("hsmshare: restore into %s: %w", dir, err)
	}
	j, err := s.readJournal()
	if err != nil {
		return nil, err
	}
	if j != nil {
		return nil, fmt.Errorf("%w: store %s has an unfinished seal-key rotation to %q; finish it (open the store and Rotate) or restore into an empty directory", ErrRestoreConflict, dir, j.ToLabel)
	}
	hasKeyInfo, err := s.keyInfoMatches(key)
	if err != nil {
		return nil, err
	}

	// Every blob must open under key as its own record before anything is
	// written.
	for i, r := range b.info.Records {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		blob := b.blobs[i]
		info, err := InspectBlob(blob)
		if err != nil {
			return nil, fmt.Errorf("%w: record %s: %w", ErrBadBackup, r, err)
		}
		if info.SealKeyID != key.ID() {
			return nil, fmt.Errorf("%w: backup record %s is sealed under seal key %s, not %q (%s) of token %q: the backup is from another token, or from before a seal-key rotation (back up again after every rotation); nothing was restored",
				ErrWrongSealKey, r, info.SealKeyID, key.label, key.ID(), key.tok.label)
		}
		pt, err := key.Open(ctx, blob, Header{Kind: r.Kind, KeyID: r.ID, PartyID: party, Version: r.Version})
		wipe(pt)
		if err != nil {
			return nil, fmt.Errorf("hsmshare: restore: backup record %s does not open (nothing was restored): %w", r, err)
		}
	}

	// What the store holds already.
	inBackup := make(map[RecordRef]bool, len(b.info.Records))
	newest := map[[2]string]uint64{}
	for _, r := range b.info.Records {
		inBackup[r] = true
		if k := [2]string{r.Kind, r.ID}; r.Version >= newest[k] {
			newest[k] = r.Version
		}
	}
	res := &RestoreResult{}
	var existing []RecordRef
	storeNewest := map[[2]string]uint64{}
	err = s.eachVersion(func(kind, id string, v uint64) error {
		if slices.Contains(opts.Refuse, kind) || slices.Contains(b.info.Excluded, kind) {
			return nil // never written by a restore: no conflict
		}
		r := RecordRef{Kind: kind, ID: id, Version: v}
		existing = append(existing, r)
		if inBackup[r] {
			res.Replaced++
		} else {
			res.Kept++
		}
		if k := [2]string{kind, id}; v >= storeNewest[k] {
			storeNewest[k] = v
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hsmshare: restore: %w", err)
	}
	if len(existing) > 0 && !opts.Replace {
		return nil, fmt.Errorf("%w: store %s already holds %d record versions (%s, ...); restore onto an empty store, or ask to replace (the backup's versions replace the same versions, newer ones stay)",
			ErrRestoreConflict, dir, len(existing), existing[0])
	}
	for k, v := range storeNewest {
		if bv, ok := newest[k]; ok && v > bv {
			res.Newer = append(res.Newer, RecordRef{Kind: k[0], ID: k[1], Version: v})
		}
	}
	slices.SortFunc(res.Newer, compareRefs)

	if !hasKeyInfo {
		if err := s.writeKeyInfo(key); err != nil {
			return nil, err
		}
	}
	for i, r := range b.info.Records {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("hsmshare: restore into %s interrupted after %d of %d records (run it again, replacing, to finish): %w", dir, res.Restored, len(b.info.Records), err)
		}
		if err := s.writeBlob(r.Kind, r.ID, r.Version, b.blobs[i]); err != nil {
			return res, fmt.Errorf("hsmshare: restore into %s: write %s after %d of %d records (run it again, replacing, to finish): %w", dir, r, res.Restored, len(b.info.Records), err)
		}
		res.Restored++
	}
	return res, nil
}

// checkDirMode refuses a store path that is not a directory or that
// others may access.
func (s *Store) checkDirMode() error {
	st, err := os.Stat(s.dir)
	if err != nil {
		return fmt.Errorf("hsmshare: store directory: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("hsmshare: store path %s is not a directory", s.dir)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("hsmshare: store directory %s has mode %#o; it must be private to its owner (chmod 700 %s)", s.dir, st.Mode().Perm(), s.dir)
	}
	return nil
}

// keyInfoMatches reports whether sealkey.json exists; it fails with
// ErrRestoreConflict when the file names another key.
func (s *Store) keyInfoMatches(key *SealKey) (bool, error) {
	label, id, err := readKeyInfo(s.dir)
	if err != nil {
		return false, err
	}
	if id == "" {
		return false, nil
	}
	if id != key.ID() {
		return true, fmt.Errorf("%w: %w: store %s is sealed under seal key %q (ID %s), not %q (ID %s); restore into an empty directory",
			ErrRestoreConflict, ErrWrongSealKey, s.dir, label, id, key.label, key.ID())
	}
	return true, nil
}
