package main

// kqnode offline: the commands of a site that exchanges bundle files with
// some members of its committee (a cold site, or an online site talking to
// one). See the README's "Cold site" section for the operator's routine.
//
//	kqnode offline identity --home DIR [--out FILE]
//	kqnode offline export   --home DIR --to PEER [--wait 10s] FILE
//	kqnode offline import   --home DIR [--dry-run] FILE
//	kqnode offline show     [--home DIR | --bundle-peers FILE,...] FILE
//	kqnode offline skip     --home DIR --from PEER --through N

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/offline"
	"github.com/keyquorum/keyquorum/tss"
)

// API routes of the offline commands.
const (
	// pathOfflineExport answers the next bundle for a bundle peer.
	pathOfflineExport = "/v1/offline/export"
	// pathOfflineImport imports a bundle.
	pathOfflineImport = "/v1/offline/import"
	// pathOfflineInspect shows what a bundle asks without importing it.
	pathOfflineInspect = "/v1/offline/inspect"
	// pathOfflineSkip declares bundles from a peer lost.
	pathOfflineSkip = "/v1/offline/skip"
)

// maxBundleFile bounds a bundle file the commands read: what fits, in
// base64, in one API request body.
const maxBundleFile = maxRequestBody/4*3 - 4096

// maxWait bounds export's --wait.
const maxWait = 10 * time.Minute

// Codes of refused bundles, one per offline sentinel.
const (
	codeBundleMalformed      = "bundle_malformed"       // not a bundle, truncated, or a newer format
	codeBundleUnknownSender  = "bundle_unknown_sender"  // from a party this site does not know as a bundle peer
	codeBundleTampered       = "bundle_tampered"        // the signature or the decryption failed
	codeBundleWrongCommittee = "bundle_wrong_committee" // made for another committee
	codeBundleWrongRecipient = "bundle_wrong_recipient" // addressed to another site
	codeBundleExpired        = "bundle_expired"         // past its expiry, or made in the future
	codeBundleReplayed       = "bundle_replayed"        // already imported
	codeBundleOutOfOrder     = "bundle_out_of_order"    // an earlier bundle from the sender is missing
	codeBundleInboxFull      = "bundle_inbox_full"      // the engine has not taken the previous messages yet
	codeNoBundlePeers        = "no_bundle_peers"        // the site runs without --bundle-peers
	codeBadBundleIdentity    = "bad_bundle_identity"    // a bundle identity file is malformed
	codeBundleNotInCommittee = "bundle_peer_unknown"    // --to or --from names no bundle peer
)

// bundleCode maps an error about a bundle to its code and HTTP status.
func bundleCode(err error) (string, int, bool) {
	for _, m := range []struct {
		err    error
		code   string
		status int
	}{
		{offline.ErrMalformed, codeBundleMalformed, 422}, {offline.ErrUnsupportedVersion, codeBundleMalformed, 422},
		{offline.ErrTooLarge, codeBundleMalformed, 422},
		{offline.ErrUnknownSender, codeBundleUnknownSender, 422}, {offline.ErrTampered, codeBundleTampered, 422},
		{offline.ErrWrongCommittee, codeBundleWrongCommittee, 422}, {offline.ErrWrongRecipient, codeBundleWrongRecipient, 422},
		{offline.ErrExpired, codeBundleExpired, 422}, {offline.ErrReplayed, codeBundleReplayed, 409},
		{offline.ErrOutOfOrder, codeBundleOutOfOrder, 409}, {offline.ErrInboxFull, codeBundleInboxFull, 503},
		{offline.ErrNotInCommittee, codeBundleNotInCommittee, 400},
		{keyquorum.ErrNoBundlePeers, codeNoBundlePeers, 409}, {keyquorum.ErrBadBundleIdentity, codeBadBundleIdentity, 400},
	} {
		if errors.Is(err, m.err) {
			return m.code, m.status, true
		}
	}
	return "", 0, false
}

type offlineExportRequest struct {
	To string `json:"to"`
	// WaitMillis is how long to wait for messages to the peer when none
	// are queued yet (0: do not wait).
	WaitMillis int64 `json:"wait_ms,omitempty"`
}

type offlineExportResult struct {
	// Bundle is the bundle, base64; empty when nothing was waiting.
	Bundle string                `json:"bundle,omitempty"`
	Info   *keyquorum.BundleInfo `json:"info,omitempty"`
}

type offlineImportRequest struct {
	Bundle string `json:"bundle"`
}

type offlineImportResult struct {
	Info *keyquorum.BundleInfo `json:"info"`
	// Refused, in a dry run, is why an import would refuse the bundle,
	// and RefusedCode its code.
	Refused     string `json:"refused,omitempty"`
	RefusedCode string `json:"refused_code,omitempty"`
}

type offlineSkipRequest struct {
	// From names the peer whose bundles were lost; To, instead, the peer
	// this site's next bundles go to, numbered after Through.
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
	Through uint64 `json:"through"`
}

// offlineExport answers the next bundle for a peer, waiting for messages
// for up to wait_ms. Once messages are queued it waits until none arrived
// for settleTime, so that one round's messages leave in one bundle.
func (s *server) offlineExport(w http.ResponseWriter, r *http.Request) {
	var req offlineExportRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.To == "" || req.WaitMillis < 0 || time.Duration(req.WaitMillis)*time.Millisecond > maxWait {
		s.fail(w, r, fmt.Errorf("%w: offline export needs a peer (to) and a wait of 0 to %s", errBadRequest, maxWait))
		return
	}
	to := tss.PartyID(req.To)
	deadline := time.Now().Add(time.Duration(req.WaitMillis) * time.Millisecond)
	const settleTime = 300 * time.Millisecond
	last, stable := -1, time.Time{}
	for {
		p, err := s.node.PendingBundle(to)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if p != last {
			last, stable = p, time.Now()
		}
		if (p > 0 && time.Since(stable) >= settleTime) || time.Now().After(deadline) {
			break
		}
		select {
		case <-r.Context().Done():
			s.fail(w, r, r.Context().Err())
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	b, info, err := s.node.ExportBundle(r.Context(), to)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res := offlineExportResult{Info: info}
	if b != nil {
		res.Bundle = base64.StdEncoding.EncodeToString(b)
	}
	writeJSON(w, 200, res)
}

// bundleOf reads the bundle of an import or inspect request.
func bundleOf(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	var req offlineImportRequest
	if err := decode(w, r, &req); err != nil {
		return nil, err
	}
	b, err := base64.StdEncoding.DecodeString(req.Bundle)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("%w: bundle is not base64 of a bundle file", errBadRequest)
	}
	return b, nil
}

// offlineInspect shows what a bundle asks, without importing it; a bundle
// an import would refuse is answered with what could be read and why.
func (s *server) offlineInspect(w http.ResponseWriter, r *http.Request) {
	b, err := bundleOf(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	info, err := s.node.InspectBundle(r.Context(), b)
	if info == nil {
		s.fail(w, r, err)
		return
	}
	res := offlineImportResult{Info: info}
	if err != nil {
		res.Refused = err.Error()
		res.RefusedCode, _, _ = classify(err)
	}
	writeJSON(w, 200, res)
}

// offlineImport imports a bundle.
func (s *server) offlineImport(w http.ResponseWriter, r *http.Request) {
	b, err := bundleOf(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	info, err := s.node.ImportBundle(r.Context(), b)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, offlineImportResult{Info: info})
}

// offlineSkip declares bundles from a peer lost.
func (s *server) offlineSkip(w http.ResponseWriter, r *http.Request) {
	var req offlineSkipRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if (req.From == "") == (req.To == "") || req.Through == 0 {
		s.fail(w, r, fmt.Errorf("%w: offline skip needs one peer (from, or to) and a sequence number (through)", errBadRequest))
		return
	}
	var err error
	if req.From != "" {
		err = s.node.SkipBundles(r.Context(), tss.PartyID(req.From), req.Through)
	} else {
		err = s.node.SkipSentBundles(r.Context(), tss.PartyID(req.To), req.Through)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, req)
}

// cmdOffline dispatches the offline subcommands.
func cmdOffline(ctx context.Context, e *env, args []string) error {
	const synopsis = "kqnode offline identity|export|import|show|skip ... (kqnode offline SUBCOMMAND -h for its flags)"
	if len(args) == 0 {
		return usageErrorf("offline: identity, export, import, show or skip?\nusage: %s", synopsis)
	}
	switch args[0] {
	case "identity":
		return cmdOfflineIdentity(ctx, e, args[1:])
	case "export":
		return cmdOfflineExport(ctx, e, args[1:])
	case "import":
		return cmdOfflineImport(ctx, e, args[1:])
	case "show":
		return cmdOfflineShow(ctx, e, args[1:])
	case "skip":
		return cmdOfflineSkip(ctx, e, args[1:])
	}
	e.json = wantsJSON(args)
	return usageErrorf("offline: unknown subcommand %q: identity, export, import, show or skip\nusage: %s", args[0], synopsis)
}

// cmdOfflineIdentity prints (or writes) the site's bundle identity, making
// its HPKE key in the token the first time. The site must be stopped: it
// opens the token and the store itself.
func cmdOfflineIdentity(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("offline identity", "kqnode offline identity --home DIR [--out FILE]")
	homeDir := fs.String("home", "", "site home directory made by kqnode init (required; the site must not be running)")
	out := fs.String("out", "", "also write the identity to FILE (mode 0644)")
	fs.Bool("json", true, "the output is one JSON object either way (accepted for scripts that pass it to every command)")
	e.json = true
	if err := fs.parse(args, e.stdout); err != nil {
		return err
	}
	if *homeDir == "" || fs.NArg() != 0 {
		return usageErrorf("offline identity: --home is required, and it takes no arguments\nusage: %s", fs.synopsis)
	}
	abs, err := filepath.Abs(*homeDir)
	if err != nil {
		return usageErrorf("offline identity: --home %q: %v", *homeDir, err)
	}
	h := home{dir: abs}
	if err := h.check(); err != nil {
		return err
	}
	cfg, err := h.loadConfig()
	if err != nil {
		return err
	}
	if err := checkModule(cfg.Module); err != nil {
		return moduleError(err, fmt.Sprintf(`"module" in %s`, h.path(configFile)))
	}
	if err := checkPINSource(cfg.PINSource); err != nil {
		return err
	}
	node, err := keyquorum.Open(ctx, keyquorum.Config{
		HSM: cfg.hsm(), SealKeyLabel: cfg.SealKeyLabel, IdentityLabel: cfg.IdentityLabel,
		StoreDir: h.storeDir(), AllowNoTokenRNG: cfg.AllowNoTokenRNG, Offline: true,
	})
	if errors.Is(err, hsmshare.ErrStoreLocked) {
		return fmt.Errorf("%w: is `kqnode run --home %s` running? Stop it, run `kqnode offline identity`, start it again (the identity does not change afterwards)", err, h.dir)
	}
	if err != nil {
		return err
	}
	defer node.Close()
	id, err := node.BundleIdentity(ctx)
	if err != nil {
		return err
	}
	b, err := json.Marshal(id)
	if err != nil {
		return err
	}
	if *out != "" {
		if err := writeFileAtomic(*out, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", *out, err)
		}
	}
	_, err = fmt.Fprintln(e.stdout, string(b))
	return err
}

// cmdOfflineExport writes the next bundle for a peer into FILE.
func cmdOfflineExport(ctx context.Context, e *env, args []string) error {
	f := newClientFlags("offline export", "kqnode offline export --home DIR --to PEER [--wait 10s] [--force] FILE")
	to := f.String("to", "", "the bundle peer's peer ID (required)")
	wait := f.Duration("wait", 0, "when nothing is waiting for the peer yet, wait this long for the site's messages (at most 10m)")
	force := f.Bool("force", false, "replace FILE if it exists")
	args, files := splitFiles(f.FlagSet, args)
	c, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if *to == "" || len(files) != 1 || *wait < 0 || *wait > maxWait {
		return usageErrorf("offline export: --to and one FILE are required, --wait is 0 to %s\nusage: %s", maxWait, f.synopsis)
	}
	path := files[0]
	if !*force {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("%w: %s: give another FILE, or --force to replace it", errFileExists, path)
		}
	}
	var res offlineExportResult
	if err := c.call(ctx, pathOfflineExport, offlineExportRequest{To: *to, WaitMillis: wait.Milliseconds()}, &res); err != nil {
		return err
	}
	type exportOutput struct {
		Exported bool                  `json:"exported"`
		File     string                `json:"file,omitempty"`
		Info     *keyquorum.BundleInfo `json:"info,omitempty"`
	}
	if res.Bundle == "" {
		if e.json {
			return printJSON(e.stdout, exportOutput{})
		}
		_, err := fmt.Fprintf(e.stdout, "nothing to export to %s: no message of this site waits for it\n", *to)
		return err
	}
	b, err := base64.StdEncoding.DecodeString(res.Bundle)
	if err != nil {
		return fmt.Errorf("control API %s: the bundle is not base64: %w", c.endpoint, err)
	}
	// The site recorded the bundle's sequence number: losing this file
	// stops the channel until the peer skips it, so say so if it fails.
	if err := writeFileAtomic(path, b, 0o600); err != nil {
		return fmt.Errorf("write bundle %d for %s to %s: %w; the site counted it as sent: export cannot make it again, so the peer's operator must skip it (kqnode offline skip --from %s --through %d)",
			res.Info.Sequence, *to, path, err, c.site, res.Info.Sequence)
	}
	if e.json {
		return printJSON(e.stdout, exportOutput{Exported: true, File: path, Info: res.Info})
	}
	fmt.Fprintf(e.stdout, "wrote %s: carry it to %s and run `kqnode offline import` there\n", path, *to)
	return printBundle(e.stdout, res.Info)
}

// readBundleFile reads a bundle file of at most maxBundleFile bytes.
func readBundleFile(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bundle file: %w", err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxBundleFile+1))
	if err != nil {
		return nil, fmt.Errorf("bundle file %s: %w", path, err)
	}
	if len(b) > maxBundleFile {
		return nil, fmt.Errorf("bundle file %s: %w: over %d bytes, more than the control API carries", path, offline.ErrTooLarge, maxBundleFile)
	}
	return b, nil
}

// cmdOfflineImport imports a bundle into the running site, or with
// --dry-run shows what it asks.
func cmdOfflineImport(ctx context.Context, e *env, args []string) error {
	f := newClientFlags("offline import", "kqnode offline import --home DIR [--dry-run] FILE")
	dry := f.Bool("dry-run", false, "do not import: check the bundle and show what it asks of this site (the same as kqnode offline show --home)")
	args, files := splitFiles(f.FlagSet, args)
	c, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		return usageErrorf("offline import: one FILE is required\nusage: %s", f.synopsis)
	}
	if *dry {
		return showViaSite(ctx, e, c, files[0])
	}
	b, err := readBundleFile(files[0])
	if err != nil {
		return err
	}
	var res offlineImportResult
	if err := c.call(ctx, pathOfflineImport, offlineImportRequest{Bundle: base64.StdEncoding.EncodeToString(b)}, &res); err != nil {
		return err
	}
	if e.json {
		return printJSON(e.stdout, res)
	}
	fmt.Fprintf(e.stdout, "imported %s: the site's engine has its messages; export what it answers with `kqnode offline export`\n", files[0])
	return printBundle(e.stdout, res.Info)
}

// showViaSite asks the running site to open the bundle without importing
// it, prints what it asks, and fails with the refusal an import would meet.
func showViaSite(ctx context.Context, e *env, c *client, path string) error {
	b, err := readBundleFile(path)
	if err != nil {
		return err
	}
	var res offlineImportResult
	if err := c.call(ctx, pathOfflineInspect, offlineImportRequest{Bundle: base64.StdEncoding.EncodeToString(b)}, &res); err != nil {
		return err
	}
	if res.Refused != "" {
		if !e.json {
			fmt.Fprintf(e.stderr, "what could be read of %s (an import would refuse it):\n", path)
			_ = printBundle(e.stderr, res.Info)
		}
		return &apiError{status: http.StatusUnprocessableEntity, body: errorBody{Code: res.RefusedCode, Error: res.Refused}}
	}
	if e.json {
		return printJSON(e.stdout, res.Info)
	}
	return printBundle(e.stdout, res.Info)
}

// cmdOfflineShow prints a bundle's header. With --home it asks the running
// site, which verifies it and, for a bundle addressed to it, shows what it
// asks (the digests and the intent's summary of a signing request);
// without, it reads the file alone and verifies the signature when
// --bundle-peers names the sender.
func cmdOfflineShow(ctx context.Context, e *env, args []string) error {
	if hasFlag(args, "home") {
		f := newClientFlags("offline show", "kqnode offline show [--home DIR | --bundle-peers FILE,...] FILE")
		args, files := splitFiles(f.FlagSet, args)
		c, err := f.parse(e, args)
		if err != nil {
			return err
		}
		if len(files) != 1 {
			return usageErrorf("offline show: one FILE is required\nusage: %s", f.synopsis)
		}
		return showViaSite(ctx, e, c, files[0])
	}
	fs := newFlagSet("offline show", "kqnode offline show [--home DIR | --bundle-peers FILE,...] FILE")
	peersFiles := fs.String("bundle-peers", "", "bundle identity files (kqnode offline identity) to verify the sender's signature with, comma-separated")
	jsonOut := fs.Bool("json", false, "print exactly one JSON object on stdout (also on failure)")
	e.json = wantsJSON(args)
	args, files := splitFiles(fs.FlagSet, args)
	if err := fs.parse(args, e.stdout); err != nil {
		return err
	}
	e.json = *jsonOut
	if len(files) != 1 {
		return usageErrorf("offline show: one FILE is required\nusage: %s", fs.synopsis)
	}
	file := files[0]
	b, err := readBundleFile(file)
	if err != nil {
		return err
	}
	h, err := offline.Inspect(b)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	info := &keyquorum.BundleInfo{Committee: h.Committee, Sender: h.Sender, Recipient: h.Recipient, Sequence: h.Sequence,
		Created: h.Created.UTC(), Expires: h.Expires.UTC(), Messages: h.Messages, Size: len(b)}
	for _, ct := range h.Contents {
		id := hex.EncodeToString(ct.Session[:])
		if k := len(info.Sessions); k > 0 && info.Sessions[k-1].Session == id {
			info.Sessions[k-1].Rounds = append(info.Sessions[k-1].Rounds, ct.Round)
			continue
		}
		info.Sessions = append(info.Sessions, keyquorum.BundleSession{Session: id, Rounds: []uint32{ct.Round}})
	}
	var verr error
	if *peersFiles != "" {
		peers, err := loadBundlePeers(*peersFiles)
		if err != nil {
			return err
		}
		verr = fmt.Errorf("%w: %s is not among the identities of --bundle-peers", offline.ErrUnknownSender, h.Sender)
		for _, p := range peers {
			if id, _ := p.PartyID(); id == h.Sender {
				_, verr = offline.VerifyFrom(b, p.Identity)
				break
			}
		}
		info.Verified = verr == nil
	}
	if verr != nil {
		if !e.json {
			fmt.Fprintf(e.stderr, "what the file claims (its signature does NOT verify):\n")
			_ = printBundle(e.stderr, info)
		}
		return fmt.Errorf("%s: %w", file, verr)
	}
	if e.json {
		return printJSON(e.stdout, info)
	}
	return printBundle(e.stdout, info)
}

// splitFiles separates the positional arguments (the bundle files) from
// the flags, wherever they are on the command line, so that
// `export --to ID FILE --json` parses: the flag package stops at the first
// positional argument. An argument that follows a flag taking a value is
// that value.
func splitFiles(fs *flag.FlagSet, args []string) (flags, files []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return flags, append(files, args[i+1:]...)
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			files = append(files, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // the parser reports it
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return flags, files
}

// hasFlag reports whether args set the flag name.
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		a = strings.TrimLeft(a, "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// cmdOfflineSkip declares bundles from a peer lost.
func cmdOfflineSkip(ctx context.Context, e *env, args []string) error {
	f := newClientFlags("offline skip", "kqnode offline skip --home DIR (--from PEER | --to PEER) --through N")
	from := f.String("from", "", "the bundle peer whose bundles were lost: the next bundle accepted from PEER is N+1")
	to := f.String("to", "", "after a restore of this site's store, the bundle peer that refuses this site's bundles as replayed: the next bundle to PEER is numbered N+1, N being the last bundle PEER accepted (its error names it)")
	through := f.Uint64("through", 0, "the sequence number to continue after (required)")
	c, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if (*from == "") == (*to == "") || *through == 0 || f.NArg() != 0 {
		return usageErrorf("offline skip: one of --from and --to, and --through, are required\nusage: %s", f.synopsis)
	}
	var res offlineSkipRequest
	if err := c.call(ctx, pathOfflineSkip, offlineSkipRequest{From: *from, To: *to, Through: *through}, &res); err != nil {
		return err
	}
	return output(e, &res)
}

// loadBundlePeers reads bundle identity files: each holds one identity
// (kqnode offline identity) or a JSON list of them.
func loadBundlePeers(list string) ([]keyquorum.BundlePeer, error) {
	var out []keyquorum.BundlePeer
	for _, path := range splitList(list) {
		b, err := readTrusted(path, peersPolicy, 1<<20)
		if err != nil {
			return nil, err
		}
		b = bytes.TrimSpace(b)
		if len(b) > 0 && b[0] == '[' {
			var ps []keyquorum.BundlePeer
			if err := json.Unmarshal(b, &ps); err != nil {
				return nil, fmt.Errorf("bundle identities %s: %w", path, err)
			}
			out = append(out, ps...)
			continue
		}
		var p keyquorum.BundlePeer
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("bundle identity %s: %w", path, err)
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no identity in %s", keyquorum.ErrBadBundleIdentity, list)
	}
	return out, nil
}

// printBundle prints what an operator checks of a bundle.
func printBundle(w io.Writer, info *keyquorum.BundleInfo) error {
	if info == nil {
		return nil
	}
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	fmt.Fprintf(w, "committee:  %s\nfrom:       %s\nto:         %s\nsequence:   %d\ncreated:    %s\nexpires:    %s\nsize:       %d bytes, %d messages in %d sessions\n",
		info.Committee, info.Sender, info.Recipient, info.Sequence, ts(info.Created), ts(info.Expires), info.Size, info.Messages, len(info.Sessions))
	switch {
	case info.Verified:
		fmt.Fprintln(w, "signature:  verified with the sender's identity key")
	default:
		fmt.Fprintln(w, "signature:  NOT VERIFIED: nothing above is to be trusted")
	}
	for _, s := range info.Sessions {
		rounds := make([]string, len(s.Rounds))
		for i, r := range s.Rounds {
			rounds[i] = fmt.Sprint(r)
		}
		fmt.Fprintf(w, "session %s: rounds %s", s.Session[:16], strings.Join(rounds, ","))
		if len(s.Types) > 0 {
			fmt.Fprintf(w, "; %s", strings.Join(s.Types, ","))
		}
		fmt.Fprintln(w)
		if r := s.Request; r != nil {
			printBundleRequest(w, r)
		}
	}
	if info.Verified && !info.Opened && len(info.Sessions) > 0 {
		fmt.Fprintln(w, "(the messages are encrypted to the recipient: only its site can show what they ask)")
	}
	return nil
}

// printBundleRequest prints a proposal found in a bundle.
func printBundleRequest(w io.Writer, r *keyquorum.BundleRequest) {
	what := map[string]string{"keygen": "key generation", "sign": "signature (GG18)", "online": "signature (GG20, presigned)",
		"presign": "presignatures (GG20)", "reshare": "reshare", "commit": "reshare commit", "reconcile": "pool reconciliation"}[r.Op]
	if what == "" {
		what = r.Op
	}
	fmt.Fprintf(w, "  request:  %s proposed by %s\n", what, r.Initiator)
	if r.KeyID != "" {
		fmt.Fprintf(w, "  key:      %s\n", r.KeyID)
	}
	fmt.Fprintf(w, "  parties:  %s\n", strings.Join(partyStrings(r.Parties), ","))
	if r.Threshold > 0 {
		fmt.Fprintf(w, "  threshold: %d\n", r.Threshold)
	}
	if r.Count > 0 {
		fmt.Fprintf(w, "  count:    %d\n", r.Count)
	}
	if r.Path != "" {
		fmt.Fprintf(w, "  path:     %s\n", r.Path)
	}
	for _, d := range r.Digests {
		fmt.Fprintf(w, "  digest:   %s\n", d)
	}
	if r.IntentKind != "" {
		fmt.Fprintf(w, "  intent:   %s %s\n", r.IntentKind, r.IntentHash)
		if r.Covered {
			fmt.Fprintln(w, "  digests:  every one derived by this site from the intent")
		} else {
			fmt.Fprintln(w, "  digests:  NOT ALL derived from the intent: this site refuses to sign")
		}
	}
	if len(r.Summary) > 0 {
		var b bytes.Buffer
		_ = printSummary(&b, r.Summary)
		fmt.Fprint(w, "  "+strings.ReplaceAll(strings.TrimRight(b.String(), "\n"), "\n", "\n  ")+"\n")
	}
	if r.Policy != "" {
		fmt.Fprintf(w, "  policy:   %s\n", r.Policy)
	}
	if r.Problem != "" {
		fmt.Fprintf(w, "  problem:  %s\n", r.Problem)
	}
}
