package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/audit"
	"github.com/keyquorum/keyquorum/transport"
	"github.com/keyquorum/keyquorum/tss"
)

// The audit commands read a site's audit log (DIR/audit) without the site:
// they need only the log's directory (or a copy of it) and the site's
// public identity key, never the token or a secret. The one exception is
// audit show, which asks the running site for an entry with its sealed
// detail part opened: only the site's HSM can open it.

type auditVerifyResult struct {
	Origin         string `json:"origin"`
	Entries        uint64 `json:"entries"`
	Checkpoints    int    `json:"checkpoints"`
	LatestSize     uint64 `json:"latest_size"`
	LatestRoot     string `json:"latest_root,omitempty"`
	LatestCosigned uint64 `json:"latest_cosigned_size"`
	// CosignedBy maps each witness given with --witness-keys to the
	// largest checkpoint size it cosigned.
	CosignedBy map[string]uint64 `json:"cosigned_by,omitempty"`
	Unsigned   uint64            `json:"unsigned_entries"`
	TornBytes  int64             `json:"torn_bytes"`
}

func cmdAudit(ctx context.Context, e *env, args []string) error {
	const usage = "kqnode audit verify|tail|export|prove (--home DIR | --dir DIR --peer-id ID --public-key HEX) ...\n" +
		"       kqnode audit show --home DIR --entry N [--json]   (asks the running site: only its HSM opens an entry's sealed detail)"
	if len(args) == 0 {
		return usageErrorf("audit: a subcommand is required\nusage: %s", usage)
	}
	switch args[0] {
	case "verify":
		return cmdAuditVerify(ctx, e, args[1:])
	case "tail":
		return cmdAuditTail(ctx, e, args[1:])
	case "export":
		return cmdAuditExport(ctx, e, args[1:])
	case "prove":
		return cmdAuditProve(ctx, e, args[1:])
	case "show":
		return cmdAuditShow(ctx, e, args[1:])
	}
	return usageErrorf("audit: unknown subcommand %q\nusage: %s", args[0], usage)
}

// auditFlags name a log: a site's home, or a copy of its directory with
// the site's peer ID and public identity key (as init printed them).
type auditFlags struct {
	fs                   *flagSet
	home, dir, peer, pub *string
	json                 *bool
}

func newAuditFlags(name, synopsis string) *auditFlags {
	fs := newFlagSet(name, synopsis)
	return &auditFlags{fs: fs,
		home: fs.String("home", "", "the site's home directory (its log is DIR/audit, its keys in DIR/config.json)"),
		dir:  fs.String("dir", "", "a copy of a site's audit log directory, instead of --home"),
		peer: fs.String("peer-id", "", "with --dir: the site's peer ID"),
		pub:  fs.String("public-key", "", "with --dir: the site's identity public key (hex, as kqnode init printed it)"),
		json: fs.Bool("json", false, "print exactly one JSON object on stdout (also on failure)"),
	}
}

func (f *auditFlags) parse(e *env, args []string) error {
	e.json = slices.Contains(args, "--json")
	if err := f.fs.parse(args, e.stdout); err != nil {
		return err
	}
	e.json = *f.json
	return nil
}

// log returns the log directory and the verifier of its checkpoints.
func (f *auditFlags) log() (string, note.Verifier, error) {
	dir, peer, pubHex := *f.dir, *f.peer, *f.pub
	switch {
	case *f.home != "" && dir != "":
		return "", nil, usageErrorf("give --home or --dir, not both")
	case *f.home != "":
		h := home{dir: *f.home}
		cfg, err := h.loadConfig()
		if err != nil {
			return "", nil, err
		}
		dir, peer, pubHex = h.path("audit"), cfg.PeerID, cfg.IdentityPublicKey
	case dir == "" || peer == "" || pubHex == "":
		return "", nil, usageErrorf("give --home DIR, or --dir DIR with --peer-id and --public-key")
	}
	raw, err := hex.DecodeString(pubHex)
	if err != nil {
		return "", nil, usageErrorf("--public-key: not hex")
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return "", nil, usageErrorf("--public-key: not an uncompressed P-256 public key: %v", err)
	}
	v, err := audit.NewVerifier(keyquorum.AuditOrigin(tss.PartyID(peer)), pub)
	if err != nil {
		return "", nil, err
	}
	return dir, v, nil
}

func cmdAuditVerify(ctx context.Context, e *env, args []string) error {
	f := newAuditFlags("audit verify", "kqnode audit verify (--home DIR | --dir DIR --peer-id ID --public-key HEX) [--witness-keys FILE] [--trusted FILE,...] [--json]")
	trusted := f.fs.String("trusted", "", "signed checkpoints of this log kept elsewhere (a witness's copy, an earlier export), comma-separated files")
	witnessKeys := f.fs.String("witness-keys", "", "the other sites' public keys, one a line (\"PEER_ID PUBLIC_KEY_HEX\" as kqnode init printed them, or a signed-note verifier key): check their cosignatures and fail if one of them cosigned none")
	if err := f.parse(e, args); err != nil {
		return err
	}
	dir, v, err := f.log()
	if err != nil {
		return err
	}
	opts := audit.VerifyOptions{Log: v}
	if *witnessKeys != "" {
		ws, err := loadWitnessKeys(*witnessKeys, v.Name())
		if err != nil {
			return err
		}
		opts.Witnesses, opts.RequireWitnesses = ws, true
	}
	for _, t := range splitList(*trusted) {
		b, err := os.ReadFile(t)
		if err != nil {
			return usageErrorf("--trusted: %v", err)
		}
		opts.Trusted = append(opts.Trusted, b)
	}
	rep, err := audit.Verify(ctx, dir, opts)
	if err != nil {
		return fmt.Errorf("%w: audit log %s: %w", errAuditBad, dir, err)
	}
	res := auditVerifyResult{Origin: v.Name(), Entries: rep.Entries, Checkpoints: rep.CheckpointRecords,
		Unsigned: rep.Unsigned, TornBytes: rep.TornBytes}
	if rep.Latest != nil {
		res.LatestSize, res.LatestRoot = rep.Latest.Size, rep.Latest.Root.String()
	}
	if rep.LatestCosigned != nil {
		res.LatestCosigned = rep.LatestCosigned.Size
	}
	if opts.RequireWitnesses {
		res.CosignedBy = rep.CosignedBy
	}
	if e.json {
		return printJSON(e.stdout, res)
	}
	fmt.Fprintf(e.stdout, "audit log %s (%s): %d entries, %d checkpoints; newest checkpoint covers %d entries (root %s); %d entries after it await the next checkpoint\n",
		dir, res.Origin, res.Entries, res.Checkpoints, res.LatestSize, res.LatestRoot, res.Unsigned)
	for _, w := range opts.Witnesses {
		fmt.Fprintf(e.stdout, "cosigned by %s up to %d entries\n", w.Name(), res.CosignedBy[w.Name()])
	}
	return nil
}

// loadWitnessKeys reads the --witness-keys file: per line, a site's peer
// ID and identity public key (hex), its public key alone, or a
// signed-note verifier key; blank lines and lines starting with # are
// skipped. The site whose log is verified (origin) is not its own
// witness and is left out.
func loadWitnessKeys(path, origin string) ([]note.Verifier, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, usageErrorf("--witness-keys: %v", err)
	}
	var out []note.Verifier
	seen := map[string]bool{}
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := parseWitnessKey(line)
		if err != nil {
			return nil, usageErrorf("--witness-keys %s line %d: %v", path, i+1, err)
		}
		if v == nil || v.Name() == origin+"/witness" {
			continue
		}
		if seen[v.Name()] {
			return nil, usageErrorf("--witness-keys %s line %d: %s is listed twice", path, i+1, v.Name())
		}
		seen[v.Name()] = true
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, usageErrorf("--witness-keys %s: no witness key in it", path)
	}
	return out, nil
}

func parseWitnessKey(line string) (note.Verifier, error) {
	parts := strings.Fields(line)
	if len(parts) == 1 && strings.Contains(parts[0], "+") {
		v, err := audit.ParseVerifierKey(parts[0])
		if err != nil {
			return nil, fmt.Errorf("not a verifier key: %v", err)
		}
		return v, nil
	}
	if len(parts) > 2 {
		return nil, fmt.Errorf("want PEER_ID PUBLIC_KEY_HEX, a public key, or a verifier key")
	}
	b, err := hex.DecodeString(parts[len(parts)-1])
	if err != nil {
		return nil, fmt.Errorf("public key is not hex")
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b)
	if err != nil {
		return nil, fmt.Errorf("not an uncompressed P-256 public key: %v", err)
	}
	party, err := transport.PartyIDFromPublicKey(pub)
	if err != nil {
		return nil, err
	}
	if len(parts) == 2 && parts[0] != string(party) {
		return nil, fmt.Errorf("the public key is that of peer %s, not %s", party, parts[0])
	}
	return audit.NewCosignatureVerifier(keyquorum.WitnessName(party), pub)
}

// errAuditBad marks a log that does not verify (exit 1, code audit_invalid).
var errAuditBad = errors.New("audit log does not verify")

func openAuditLog(f *auditFlags) (*audit.Log, error) {
	dir, v, err := f.log()
	if err != nil {
		return nil, err
	}
	l, err := audit.OpenReadOnly(dir, v)
	if err != nil {
		return nil, fmt.Errorf("open audit log %s: %w", dir, err)
	}
	return l, nil
}

func cmdAuditTail(ctx context.Context, e *env, args []string) error {
	f := newAuditFlags("audit tail", "kqnode audit tail (--home DIR | --dir DIR --peer-id ID --public-key HEX) [-n N] [--follow]")
	n := f.fs.Int("n", 20, "how many of the newest entries to print")
	follow := f.fs.Bool("follow", false, "keep printing new entries until interrupted")
	if err := f.parse(e, args); err != nil {
		return err
	}
	if *n < 0 {
		return usageErrorf("-n must not be negative")
	}
	l, err := openAuditLog(f)
	if err != nil {
		return err
	}
	defer l.Close()
	entries, err := l.Tail(ctx, *n)
	if err != nil {
		return err
	}
	for _, en := range entries {
		fmt.Fprintf(e.stdout, "%s\n", en.JSON())
	}
	if !*follow {
		return nil
	}
	next := l.Size()
	err = l.Follow(ctx, next, func(en audit.Entry) error {
		_, err := fmt.Fprintf(e.stdout, "%s\n", en.JSON())
		return err
	})
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

func cmdAuditExport(ctx context.Context, e *env, args []string) error {
	f := newAuditFlags("audit export", "kqnode audit export (--home DIR | --dir DIR --peer-id ID --public-key HEX) [--since RFC3339] [--format jsonl]")
	since := f.fs.String("since", "", "only entries appended at or after this time (RFC 3339)")
	format := f.fs.String("format", "jsonl", "output format: jsonl (one entry's canonical JSON per line)")
	if err := f.parse(e, args); err != nil {
		return err
	}
	if *format != "jsonl" {
		return usageErrorf("--format %q: only jsonl is supported", *format)
	}
	var t time.Time
	if *since != "" {
		var err error
		if t, err = time.Parse(time.RFC3339, *since); err != nil {
			return usageErrorf("--since %q: %v", *since, err)
		}
	}
	l, err := openAuditLog(f)
	if err != nil {
		return err
	}
	defer l.Close()
	_, err = l.Export(ctx, e.stdout, t)
	return err
}

func cmdAuditProve(ctx context.Context, e *env, args []string) error {
	f := newAuditFlags("audit prove", "kqnode audit prove (--home DIR | --dir DIR --peer-id ID --public-key HEX) --entry N [--min-cosignatures K]")
	entry := f.fs.String("entry", "", "the entry's sequence number (required)")
	minCos := f.fs.Int("min-cosignatures", 0, "prove against a checkpoint with at least this many cosignatures")
	if err := f.parse(e, args); err != nil {
		return err
	}
	seq, err := strconv.ParseUint(*entry, 10, 64)
	if err != nil {
		return usageErrorf("--entry %q: want a sequence number", *entry)
	}
	l, err := openAuditLog(f)
	if err != nil {
		return err
	}
	defer l.Close()
	p, err := l.Prove(ctx, seq, *minCos)
	if err != nil {
		return fmt.Errorf("%w: prove entry %d: %w", errBadRequest, seq, err)
	}
	return printJSON(e.stdout, p)
}

// cmdAuditShow prints one entry and its opened detail part. Unlike the
// other audit commands it goes through the running site's control API
// (roles admin or auditor), because the detail is sealed under a data key
// that only the site's HSM can unseal.
func cmdAuditShow(ctx context.Context, e *env, args []string) error {
	f := newClientFlags("audit show", "kqnode audit show --home DIR --entry N [--json]\n"+
		"Asks the running site (kqnode run) for entry N with its sealed detail part opened: only the site's HSM opens it. Needs an operator with the admin or auditor role.")
	entry := f.String("entry", "", "the entry's sequence number, as audit tail shows it (required)")
	c, err := f.parse(e, args)
	if err != nil {
		return err
	}
	seq, err := strconv.ParseUint(*entry, 10, 64)
	if err != nil {
		return usageErrorf("audit show: --entry %q: want a sequence number\nusage: %s", *entry, f.synopsis)
	}
	var res auditShowResult
	if err := c.call(ctx, pathAuditEntry+"?seq="+strconv.FormatUint(seq, 10), nil, &res); err != nil {
		return err
	}
	if e.json {
		return printJSON(e.stdout, res)
	}
	fmt.Fprintf(e.stdout, "entry:  %s\n", res.Entry)
	switch {
	case len(res.Detail) > 0:
		var sd keyquorum.SignDetail
		if json.Unmarshal(res.Detail, &sd) == nil && sd.SummaryText != "" {
			fmt.Fprintf(e.stdout, "summary:\n%s\n", strings.TrimRight(sd.SummaryText, "\n"))
		}
		var buf bytes.Buffer
		if err := json.Indent(&buf, res.Detail, "", "  "); err != nil {
			return fmt.Errorf("audit show: the site answered a detail that is not JSON: %w", err)
		}
		fmt.Fprintf(e.stdout, "detail: %s\n", buf.String())
	case res.DetailBase64 != "":
		fmt.Fprintf(e.stdout, "detail (base64): %s\n", res.DetailBase64)
	default:
		fmt.Fprintln(e.stdout, "detail: none (the entry has no sealed detail part)")
	}
	return nil
}
