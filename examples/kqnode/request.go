package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/keyquorum/keyquorum/policy"
	"github.com/keyquorum/keyquorum/wallet"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

// The request workflow. A request is an intent waiting for approvals,
// kept on the initiating site under DIR/requests/ID/:
//
//	request.json   the key, the intent (base64) and when it was made
//	statement      the text approvers sign (ssh-keygen -Y sign -n keyquorum-approval)
//	approvals/     the approvers' .sig files
//
// Its ID is the first 16 hex digits of the intent hash. Nothing in it is
// secret, and nothing in it is trusted: every site derives the digests and
// the summary from the intent itself and verifies every approval against
// its own policy when the request is signed.
const requestsDir = "requests"

type requestFile struct {
	ID      string    `json:"id"`
	KeyID   string    `json:"key_id"`
	Kind    string    `json:"kind"`
	Intent  string    `json:"intent"`
	Created time.Time `json:"created"`
	// CreatedBy is the operator who created the request.
	CreatedBy string `json:"created_by,omitempty"`
}

type requestResult struct {
	ID        string     `json:"id"`
	Dir       string     `json:"dir"`
	Statement string     `json:"statement_file"`
	Approve   string     `json:"approve_with"`
	Approvals int        `json:"approvals"`
	Plan      planResult `json:"plan"`
}

// printRequest prints a request for people: what it signs, what the
// site's policy says, and how to approve it.
func printRequest(e *env, r *requestResult) error {
	if e.json {
		return printJSON(e.stdout, r)
	}
	var summary bytes.Buffer
	if err := json.Indent(&summary, r.Plan.Summary, "  ", "  "); err != nil {
		summary.Write(r.Plan.Summary)
	}
	d := r.Plan.Decision
	verdict := "REFUSED"
	if d.Allowed {
		verdict = "ALLOWED"
	}
	fmt.Fprintf(e.stdout, "request %s: %s with key %s (intent %s)\n", r.ID, r.Plan.Kind, r.Plan.KeyID, r.Plan.IntentHash)
	fmt.Fprintf(e.stdout, "summary (computed by this site; every site computes its own):\n  %s\n", summary.String())
	fmt.Fprintf(e.stdout, "this site's policy with %d approvals: %s", r.Approvals, verdict)
	if d.Rule != "" {
		fmt.Fprintf(e.stdout, " by rule %s", d.Rule)
	}
	fmt.Fprintf(e.stdout, ": %s\n", d.Reason)
	for _, rej := range d.Rejected {
		fmt.Fprintf(e.stdout, "  rejected: %s\n", rej)
	}
	fmt.Fprintf(e.stdout, "statement to approve: %s\napprove with: %s\n", r.Statement, r.Approve)
	return nil
}

type requestListResult struct {
	Requests []requestSummary `json:"requests"`
}

type requestSummary struct {
	ID        string    `json:"id"`
	KeyID     string    `json:"key_id"`
	Kind      string    `json:"kind"`
	Approvals int       `json:"approvals"`
	Created   time.Time `json:"created"`
}

func cmdRequest(ctx context.Context, e *env, args []string) error {
	const usage = "kqnode request create|approve|show|list|sign --home DIR ... (kqnode request SUBCOMMAND -h for each)"
	if len(args) == 0 {
		return usageErrorf("request: a subcommand is required\nusage: %s", usage)
	}
	switch args[0] {
	case "create":
		return cmdRequestCreate(ctx, e, args[1:])
	case "approve":
		return cmdRequestApprove(ctx, e, args[1:])
	case "show":
		return cmdRequestShow(ctx, e, args[1:])
	case "list":
		return cmdRequestList(ctx, e, args[1:])
	case "sign":
		return cmdRequestSign(ctx, e, args[1:])
	}
	return usageErrorf("request: unknown subcommand %q\nusage: %s", args[0], usage)
}

// intentFlags are the flags that say what a request signs.
type intentFlags struct {
	cmd                  string // the command, for usage errors
	psbt, network, paths *string
	tx, chainID          *string
	digest, path         *string
}

func addIntentFlags(f *clientFlags) *intentFlags {
	return &intentFlags{
		cmd:     f.Name(),
		psbt:    f.String("psbt", "", "a Bitcoin PSBT in base64, or @FILE (every input with its previous transaction)"),
		network: f.String("network", "regtest", "Bitcoin network of --psbt: mainnet, testnet, regtest or signet"),
		paths:   f.String("paths", "", "derivation paths whose scripts mark the key's inputs and change when the PSBT has no BIP-32 fields (m is always tried)"),
		tx:      f.String("tx", "", "an unsigned Ethereum transaction in hex, or @FILE"),
		chainID: f.String("chain-id", "", "chain ID of --tx, decimal"),
		digest:  f.String("digest", "", "a raw 32-byte digest in hex (only if the policies allow raw digests)"),
		path:    f.String("path", "", "derivation path of the signing key for --tx and --digest (default m)"),
	}
}

// intent builds the intent the flags describe.
func (i *intentFlags) intent() (*policy.Intent, error) {
	set := 0
	for _, s := range []string{*i.psbt, *i.tx, *i.digest} {
		if s != "" {
			set++
		}
	}
	if set != 1 {
		return nil, usageErrorf("give exactly one of --psbt, --tx (with --chain-id) and --digest")
	}
	path, err := hd.ParsePath(orM(*i.path))
	if err != nil {
		return nil, usageErrorf("--path %q: %v", *i.path, err)
	}
	switch {
	case *i.psbt != "":
		raw, err := readArg(i.cmd, "psbt", *i.psbt)
		if err != nil {
			return nil, err
		}
		b := []byte(raw)
		if h, err := hex.DecodeString(raw); err == nil {
			b = h
		}
		paths := []hd.Path{{}}
		for _, p := range splitList(*i.paths) {
			hp, err := hd.ParsePath(p)
			if err != nil {
				return nil, usageErrorf("--paths %q: %v", p, err)
			}
			paths = append(paths, hp)
		}
		network := *i.network
		if network == "testnet3" {
			network = "testnet"
		}
		return policy.NewPSBTIntent(network, b, paths...)
	case *i.tx != "":
		raw, err := readArg(i.cmd, "tx", *i.tx)
		if err != nil {
			return nil, err
		}
		b, err := hex.DecodeString(strings.TrimPrefix(raw, "0x"))
		if err != nil {
			return nil, usageErrorf("--tx: not hex: %v", err)
		}
		id, ok := new(big.Int).SetString(*i.chainID, 10)
		if !ok || id.Sign() <= 0 || !id.IsUint64() {
			return nil, usageErrorf("--chain-id %q: want a positive decimal number", *i.chainID)
		}
		return policy.NewEthereumTxIntent(id.Uint64(), path, b)
	default:
		d, err := hex.DecodeString(*i.digest)
		if err != nil || len(d) != 32 {
			return nil, usageErrorf("--digest: want 64 hex digits")
		}
		return policy.NewRawDigestIntent(path, [32]byte(d))
	}
}

func orM(p string) string {
	if p == "" {
		return "m"
	}
	return p
}

func cmdRequestCreate(ctx context.Context, e *env, args []string) error {
	f := newClientFlags("request create", "kqnode request create --home DIR --key ID (--psbt B64|@FILE [--network N] | --tx HEX|@FILE --chain-id N | --digest HEX) [--path m/0/1] [--expires 24h] [--json]")
	key := f.String("key", "", "key ID (required)")
	expires := f.Duration("expires", 24*time.Hour, "how long the approvals of this request stay valid")
	fl := addIntentFlags(f)
	c, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if *key == "" {
		return usageErrorf("request create: --key is required\nusage: %s", f.synopsis)
	}
	if *expires < time.Minute {
		return usageErrorf("request create: --expires must be at least 1m")
	}
	in, err := fl.intent()
	if err != nil {
		return err
	}
	var res requestResult
	req := requestCreateRequest{KeyID: *key, Intent: base64.StdEncoding.EncodeToString(in.Bytes()), ExpiresIn: int64(expires.Seconds())}
	if err := withProgress(ctx, e, c, "request create", func() error { return c.call(ctx, pathRequests, req, &res) }); err != nil {
		return err
	}
	res.Approve = "ssh-keygen -Y sign -n " + policy.ApprovalNamespace + " -f KEY " + res.Statement + " && kqnode request approve --home " + c.home.dir + " --id " + res.ID + " --signature " + res.Statement + ".sig"
	return printRequest(e, &res)
}

// requestCreate keeps a new request in the site's home (POST
// /v1/requests, role requester): the intent, and the statement its
// approvers sign.
func (s *server) requestCreate(w http.ResponseWriter, r *http.Request) {
	var req requestCreateRequest
	if err := decodeWithKey(w, r, &req, &req.KeyID); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.ExpiresIn < 60 {
		s.fail(w, r, fmt.Errorf("%w: expires_in must be at least 60 seconds", errBadRequest))
		return
	}
	plan, err := s.makePlan(r.Context(), planRequest{KeyID: req.KeyID, Intent: req.Intent, ExpiresIn: req.ExpiresIn})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	hash, _ := hex.DecodeString(plan.IntentHash)
	id := hex.EncodeToString(hash[:8])
	dir := filepath.Join(s.home, requestsDir, id)
	if err := os.MkdirAll(filepath.Join(dir, "approvals"), 0o700); err != nil {
		s.fail(w, r, fmt.Errorf("request %s: %w", id, err))
		return
	}
	rf := requestFile{ID: id, KeyID: req.KeyID, Kind: plan.Kind, Intent: req.Intent, Created: time.Now().UTC(), CreatedBy: operatorOf(r).Name}
	b, _ := json.MarshalIndent(rf, "", "  ")
	if err := writeFileAtomic(filepath.Join(dir, "request.json"), append(b, '\n'), 0o600); err != nil {
		s.fail(w, r, fmt.Errorf("request %s: %w", id, err))
		return
	}
	stmt := filepath.Join(dir, "statement")
	if err := writeFileAtomic(stmt, []byte(plan.Statement), 0o644); err != nil {
		s.fail(w, r, fmt.Errorf("request %s: %w", id, err))
		return
	}
	writeJSON(w, 200, requestResult{ID: id, Dir: dir, Statement: stmt, Plan: *plan})
}

// requestApprove adds an approval to a request kept in the site's home
// (POST /v1/requests/approve, role approver), and answers the request with
// what the site's policy decides now. The approval itself is checked by
// every site's policy when the request is signed; here it only has to be
// an armored SSH signature.
func (s *server) requestApprove(w http.ResponseWriter, r *http.Request) {
	var req requestApproveRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if len(req.ID) != 16 || strings.Trim(req.ID, "0123456789abcdef") != "" {
		s.fail(w, r, fmt.Errorf("%w: request ID %q: one is 16 lowercase hex digits, as request create printed it", errBadRequest, truncate(req.ID, 40)))
		return
	}
	sig := []byte(req.Signature)
	if len(sig) > policy.MaxSignatureSize || !strings.HasPrefix(strings.TrimSpace(req.Signature), "-----BEGIN SSH SIGNATURE-----") {
		s.fail(w, r, fmt.Errorf("%w: the approval is not an armored SSH signature (ssh-keygen -Y sign writes one)", errBadRequest))
		return
	}
	if _, _, dir, err := loadRequest(s.home, req.ID); err != nil {
		s.fail(w, r, err)
		return
	} else {
		sum := sha256.Sum256(sig)
		if err := writeFileAtomic(filepath.Join(dir, "approvals", hex.EncodeToString(sum[:8])+".sig"), sig, 0o644); err != nil {
			s.fail(w, r, fmt.Errorf("request %s: %w", req.ID, err))
			return
		}
	}
	rf, approvals, dir, err := loadRequest(s.home, req.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	plan, err := s.makePlan(r.Context(), planRequest{KeyID: rf.KeyID, Intent: rf.Intent, Approvals: approvals})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, requestResult{ID: req.ID, Dir: dir, Statement: filepath.Join(dir, "statement"), Approvals: len(approvals), Plan: *plan})
}

// loadRequest reads request ID of the site's home, with its approvals.
func loadRequest(home, id string) (*requestFile, []approvalJSON, string, error) {
	if len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
		return nil, nil, "", usageErrorf("--id %q: a request ID is 16 lowercase hex digits, as request create printed it", id)
	}
	dir := filepath.Join(home, requestsDir, id)
	b, err := os.ReadFile(filepath.Join(dir, "request.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, "", fmt.Errorf("%w: no request %s in %s (kqnode request list shows them)", errBadRequest, id, filepath.Join(home, requestsDir))
	}
	if err != nil {
		return nil, nil, "", err
	}
	var rf requestFile
	if err := json.Unmarshal(b, &rf); err != nil {
		return nil, nil, "", fmt.Errorf("request %s: request.json: %w", id, err)
	}
	stmt, err := os.ReadFile(filepath.Join(dir, "statement"))
	if err != nil {
		return nil, nil, "", fmt.Errorf("request %s: %w", id, err)
	}
	sigs, _ := filepath.Glob(filepath.Join(dir, "approvals", "*.sig"))
	slices.Sort(sigs)
	var approvals []approvalJSON
	for _, s := range sigs {
		sig, err := os.ReadFile(s)
		if err != nil {
			return nil, nil, "", fmt.Errorf("request %s: %w", id, err)
		}
		approvals = append(approvals, approvalJSON{Statement: string(stmt), Signature: string(sig)})
	}
	return &rf, approvals, dir, nil
}

func cmdRequestApprove(ctx context.Context, e *env, args []string) error {
	f := newClientFlags("request approve", "kqnode request approve --home DIR --id ID --signature FILE.sig [--json]")
	id := f.String("id", "", "request ID (required)")
	sigFile := f.String("signature", "", "the .sig file ssh-keygen -Y sign -n keyquorum-approval wrote for the request's statement (required)")
	c, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if *id == "" || *sigFile == "" {
		return usageErrorf("request approve: --id and --signature are required\nusage: %s", f.synopsis)
	}
	sig, err := os.ReadFile(*sigFile)
	if err != nil {
		return usageErrorf("--signature: %v", err)
	}
	if len(sig) > policy.MaxSignatureSize || !strings.HasPrefix(strings.TrimSpace(string(sig)), "-----BEGIN SSH SIGNATURE-----") {
		return fmt.Errorf("%w: %s is not an armored SSH signature (ssh-keygen -Y sign writes one)", errBadRequest, *sigFile)
	}
	var res requestResult
	if err := c.call(ctx, pathRequestsApprove, requestApproveRequest{ID: *id, Signature: string(sig)}, &res); err != nil {
		return err
	}
	res.Approve = "ssh-keygen -Y sign -n " + policy.ApprovalNamespace + " -f KEY " + res.Statement
	return printRequest(e, &res)
}

func cmdRequestShow(ctx context.Context, e *env, args []string) error {
	f := newClientFlags("request show", "kqnode request show --home DIR --id ID [--json]")
	id := f.String("id", "", "request ID (required)")
	c, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if *id == "" {
		return usageErrorf("request show: --id is required\nusage: %s", f.synopsis)
	}
	return showRequest(ctx, e, c, *id)
}

// showRequest asks the site for the request's plan and its policy's
// decision with the approvals collected so far.
func showRequest(ctx context.Context, e *env, c *client, id string) error {
	rf, approvals, dir, err := loadRequest(c.home.dir, id)
	if err != nil {
		return err
	}
	var plan planResult
	req := planRequest{KeyID: rf.KeyID, Intent: rf.Intent, Approvals: approvals}
	if err := withProgress(ctx, e, c, "plan", func() error { return c.call(ctx, pathPlan, req, &plan) }); err != nil {
		return err
	}
	stmt := filepath.Join(dir, "statement")
	return printRequest(e, &requestResult{ID: id, Dir: dir, Statement: stmt, Approvals: len(approvals),
		Approve: "ssh-keygen -Y sign -n " + policy.ApprovalNamespace + " -f KEY " + stmt, Plan: plan})
}

func cmdRequestList(_ context.Context, e *env, args []string) error {
	f := newClientFlags("request list", "kqnode request list --home DIR [--json]")
	c, err := f.parse(e, args)
	if err != nil {
		return err
	}
	dirs, _ := filepath.Glob(filepath.Join(c.home.dir, requestsDir, "*", "request.json"))
	out := requestListResult{Requests: []requestSummary{}}
	for _, d := range dirs {
		id := filepath.Base(filepath.Dir(d))
		rf, approvals, _, err := loadRequest(c.home.dir, id)
		if err != nil {
			continue
		}
		out.Requests = append(out.Requests, requestSummary{ID: rf.ID, KeyID: rf.KeyID, Kind: rf.Kind, Approvals: len(approvals), Created: rf.Created})
	}
	if e.json {
		return printJSON(e.stdout, out)
	}
	for _, r := range out.Requests {
		fmt.Fprintf(e.stdout, "%s  %-26s key %s  %d approvals  %s\n", r.ID, r.Kind, r.KeyID, r.Approvals, r.Created.Format(time.RFC3339))
	}
	return nil
}

func cmdRequestSign(ctx context.Context, e *env, args []string) error {
	f := newClientFlags("request sign", "kqnode request sign --home DIR --id ID [--signers ID,ID] [--protocol gg20|gg18|auto] [--json]")
	id := f.String("id", "", "request ID (required)")
	signers, protocol := f.signFlags()
	c, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if *id == "" {
		return usageErrorf("request sign: --id is required\nusage: %s", f.synopsis)
	}
	rf, approvals, _, err := loadRequest(c.home.dir, *id)
	if err != nil {
		return err
	}
	raw, err := base64.StdEncoding.DecodeString(rf.Intent)
	if err != nil {
		return fmt.Errorf("request %s: intent: %w", *id, err)
	}
	in, err := policy.ParseIntent(raw)
	if err != nil {
		return fmt.Errorf("request %s: %w", *id, err)
	}
	ids, err := peerList("request sign", "signers", *signers)
	if err != nil {
		return err
	}
	opts := signOptions{Signers: ids, Protocol: *protocol, Approvals: approvals}
	switch in.Kind() {
	case policy.KindBitcoinPSBT:
		var paths []string
		for _, p := range in.Paths() {
			paths = append(paths, p.String())
		}
		return c.request(ctx, e, "sign-psbt", pathSignPSBT, signPSBTRequest{KeyID: rf.KeyID,
			PSBT: base64.StdEncoding.EncodeToString(in.Payload()), Network: in.Network(), Paths: paths, signOptions: opts}, &signPSBTResult{})
	case policy.KindEthereumTx:
		tx, err := wallet.ParseEthereumTx(in.Payload())
		if err != nil {
			return fmt.Errorf("request %s: %w", *id, err)
		}
		b, err := tx.MarshalBinary()
		if err != nil {
			return fmt.Errorf("request %s: %w", *id, err)
		}
		return c.request(ctx, e, "sign-eth", pathSignEth, signEthRequest{KeyID: rf.KeyID, Tx: hex.EncodeToString(b),
			ChainID: fmt.Sprint(in.ChainID()), Path: in.Paths()[0].String(), signOptions: opts}, &signEthResult{})
	case policy.KindRawDigest:
		return c.request(ctx, e, "sign", pathSign, signRequest{KeyID: rf.KeyID, Digest: hex.EncodeToString(in.Payload()),
			Path: in.Paths()[0].String(), signOptions: opts}, &signResult{})
	}
	return fmt.Errorf("%w: request %s is a %s intent, which kqnode cannot sign yet", errBadRequest, *id, in.Kind())
}
