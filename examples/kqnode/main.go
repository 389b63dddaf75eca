// Command kqnode runs one site of a keyquorum committee and talks to it.
//
//	kqnode init     --home DIR --module PATH [--module-init-args ARGS] --token LABEL --pin-source file:PATH|env:VAR [--allow-no-token-rng]
//	kqnode run      --home DIR --peers FILE --policy FILE [--listen MULTIADDR,...] [--api 127.0.0.1:PORT]
//	kqnode keygen   --home DIR --threshold M --parties ID,ID,ID [--network regtest] [--wait] [--json]
//	kqnode presign  --home DIR --key ID --count N [--signers ID,ID] [--path m/0/1] [--json]
//	kqnode sign     --home DIR --key ID --digest HEX [--signers ID,ID] [--path m/0/1] [--protocol gg20|gg18|auto] [--json]
//	kqnode sign-psbt --home DIR --key ID --psbt BASE64|@FILE [--network regtest] [--json]
//	kqnode sign-eth --home DIR --key ID --tx HEX --chain-id N [--path m/0/1] [--json]
//	kqnode request  create|approve|show|list|sign --home DIR ...
//	kqnode policy   check --policy FILE | test --policy FILE --home DIR --key ID ...
//	kqnode audit    verify|tail|export|prove --home DIR ...
//	kqnode audit    show --home DIR --entry N   (through the running site)
//	kqnode operators add|remove|list --home DIR [--name NAME --key KEY.pub --roles ROLE,...] [--json]
//	kqnode status   --home DIR [--json]
//	kqnode keys     list|show --home DIR [--key ID] [--path m/0/1] [--network regtest] [--json]
//	kqnode pools    list --home DIR [--key ID] [--json]
//	kqnode reshare  --home DIR --key ID --parties ID,ID,ID --threshold M [--accept [--expires 1h]] [--json]
//	kqnode rotate-seal-key --home DIR [--json]
//	kqnode preparams status|generate --home DIR [--count N] [--json]
//	kqnode backup   --home DIR --out FILE [--force] [--json]
//	kqnode restore  --home DIR --from FILE [--replace] [--json]   (site stopped)
//
// init sets up a site's home directory and HSM keys; run is the site's
// daemon (libp2p, pre-parameter and presignature pools, and a control API on
// the Unix socket DIR/api.sock, or on loopback TCP with TLS); the other
// commands are clients of that API, and sign every request with the SSH
// key of an operator of the site (--operator-key or $KQ_OPERATOR_KEY),
// whose roles decide what it may do (see operators.go). Every file a site trusts must be its
// user's own and closed to other users (see trust.go). With --json a client prints exactly one
// JSON object on stdout, also on failure ({"error", "code", "parties"}),
// and the exit status is 0 on success, 1 when the operation failed and 2
// for a usage error. The README's "kqnode reference" documents every
// command and its JSON.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/keyquorum/keyquorum/hsmshare"
)

// env is what a command writes to, and whether its output is JSON.
type env struct {
	stdout, stderr io.Writer
	json           bool
	// closers run when the command returns: the clients' kept-alive
	// connections to the API, which would otherwise hold one of the
	// server's connections until it closes them idle (when the command
	// runs inside a longer-lived process).
	closers []func()
}

// close runs e's closers.
func (e *env) close() {
	for _, f := range e.closers {
		f()
	}
}

type command struct {
	name, summary string
	run           func(ctx context.Context, e *env, args []string) error
}

var commands = []command{
	{"init", "set up a site: home directory, seal and identity keys in the HSM token", func(ctx context.Context, e *env, args []string) error {
		e.json = true
		return cmdInit(ctx, args, e.stdout, e.stderr)
	}},
	{"run", "run the site: libp2p, pools, control API (until SIGTERM/SIGINT)", func(ctx context.Context, e *env, args []string) error {
		return cmdRun(ctx, args, e.stdout, e.stderr)
	}},
	{"keygen", "create an M-of-N key with the committee", cmdKeygen},
	{"presign", "make GG20 presignatures for a key and signer set", cmdPresign},
	{"sign", "sign a 32-byte digest", cmdSign},
	{"sign-psbt", "sign a key's inputs of a Bitcoin PSBT", cmdSignPSBT},
	{"sign-eth", "sign an Ethereum transaction", cmdSignEth},
	{"request", "create, approve, show, list and sign requests (intents waiting for approvals)", cmdRequest},
	{"policy", "check a policy file, or evaluate one against an intent without signing", cmdPolicy},
	{"audit", "verify, tail, export a site's audit log, prove an entry, or show one with its sealed detail (running site)", cmdAudit},
	{"operators", "add, remove and list the operators who may use the site's API, with their roles", cmdOperators},
	{"status", "show peers, keys, pools, pre-parameters and operations", cmdStatus},
	{"keys", "list the site's keys, or show one with its addresses and xpub at a path", cmdKeys},
	{"pools", "list the site's presignature pools (its own and those it holds for others), size its own (target), discard presignatures (drain)", cmdPools},
	{"reshare", "move a key to a new committee and/or threshold, or (--accept) authorize another site's reshare", cmdReshare},
	{"rotate-seal-key", "re-seal the site's store under a new HSM seal key and destroy the old one", cmdRotateSealKey},
	{"preparams", "show the pre-parameter pool, or generate sets now with progress", cmdPreParams},
	{"offline", "bundle files for members reached without a network (cold sites): identity, export, import, show, skip", cmdOffline},
	{"backup", "write a backup of the site's sealed key shares and configuration (no presignatures), running or stopped", cmdBackup},
	{"restore", "restore a backup into a stopped site's home, onto the same HSM token", cmdRestore},
	{"example", "make test transactions to try sign-psbt and sign-eth with", cmdExample},
	{"preparams-worker", "generate one pre-parameter set for a running site (started by kqnode run, not by hand)", cmdPreParamsWorker},
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		w := stderr
		if len(args) > 0 {
			w = stdout
		}
		fmt.Fprintln(w, "usage: kqnode COMMAND [flags]   (kqnode COMMAND -h for a command's flags)")
		fmt.Fprintln(w, "\ncommands:")
		for _, c := range commands {
			fmt.Fprintf(w, "  %-16s %s\n", c.name, c.summary)
		}
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		e := &env{stdout: stdout, stderr: stderr}
		err := c.run(ctx, e, args[1:])
		e.close()
		switch {
		case err == nil, errors.Is(err, errHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintln(stderr, "kqnode "+err.Error())
			if e.json {
				printJSON(stdout, errorBody{Error: err.Error(), Code: codeBadRequest})
			}
			return 2
		}
		fmt.Fprintf(stderr, "kqnode %s: %v\n", c.name, err)
		if e.json {
			printJSON(stdout, errorJSON(err))
		}
		return 1
	}
	fmt.Fprintf(stderr, "kqnode: unknown command %q (kqnode help lists them)\n", args[0])
	return 2
}

// Codes of failures that happen in the command itself (init, run, client).
const (
	codeWrongPIN       = "wrong_pin"
	codeTokenNotFound  = "token_not_found"
	codeModuleNotFound = "module_not_found"
	codeKeyNotFound    = "key_not_found"
	codeWeakKey        = "weak_key"
	codeStoreLocked    = "store_locked"
	// codeMechanismMissing: the token lacks a PKCS#11 mechanism keyquorum
	// needs (the message names it).
	codeMechanismMissing = "mechanism_missing"
	// codePINUnavailable: the PIN source names a file that does not exist
	// or an environment variable that is not set.
	codePINUnavailable = "pin_unavailable"
	// codeNotInitialized: --home is not a site home (kqnode init has not
	// run for it).
	codeNotInitialized = "not_initialized"
	// codeHomeMismatch: --home was set up for another token, module or
	// identity than the one given.
	codeHomeMismatch = "home_mismatch"
	// codeClientTimeout: the client's --timeout ran out before the site
	// answered; the operation may still be running at the site.
	codeClientTimeout = "client_timeout"
	// codeNoTokenRNG: the token announces no random number generator and
	// the site was not set up with --allow-no-token-rng.
	codeNoTokenRNG = "no_token_rng"
	// codeTokenRNGFailed: the token's C_GenerateRandom failed.
	codeTokenRNGFailed = "token_rng_failed"
)

// Failures of the command itself, before or without an answer from a site.
var (
	// errPINUnavailable means the PIN source cannot be read: its file does
	// not exist or its environment variable is not set.
	errPINUnavailable = errors.New("PIN source unavailable")
	// errNotInitialized means --home is not a site home.
	errNotInitialized = errors.New("not a site home")
	// errHomeMismatch means --home belongs to another token or identity.
	errHomeMismatch = errors.New("home set up for another token")
	// errClientTimeout means the client gave up waiting (--timeout).
	errClientTimeout = errors.New("no answer within --timeout")
)

// errorJSON describes err for a --json failure.
func errorJSON(err error) errorBody {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.body
	}
	for _, m := range []struct {
		err  error
		code string
	}{
		{hsmshare.ErrWrongPIN, codeWrongPIN}, {hsmshare.ErrPINLocked, codeWrongPIN},
		{hsmshare.ErrTokenNotFound, codeTokenNotFound}, {hsmshare.ErrModuleNotFound, codeModuleNotFound},
		{hsmshare.ErrKeyNotFound, codeKeyNotFound}, {hsmshare.ErrWeakKey, codeWeakKey},
		{hsmshare.ErrStoreLocked, codeStoreLocked}, {hsmshare.ErrMechanismMissing, codeMechanismMissing},
		{hsmshare.ErrNoRNG, codeNoTokenRNG}, {hsmshare.ErrRandomFailed, codeTokenRNGFailed},
		{errNotRunning, codeNotRunning},
		{errUnsafeFile, codeUnsafeFile}, {errServerNotAuthenticated, codeNotAuthenticated},
		{errNoOperatorKey, codeUnauthenticated}, {errNoOperators, codeNotInitialized},
		{errPINUnavailable, codePINUnavailable}, {errNotInitialized, codeNotInitialized},
		{errHomeMismatch, codeHomeMismatch}, {errClientTimeout, codeClientTimeout},
		{errFileExists, codeFileExists}, {hsmshare.ErrBadBackup, codeBadBackup},
		{hsmshare.ErrRestoreConflict, codeRestoreConflict}, {hsmshare.ErrWrongSealKey, codeWrongSealKey},
	} {
		if errors.Is(err, m.err) {
			return errorBody{Error: err.Error(), Code: m.code}
		}
	}
	code, _, parties := classify(err)
	return errorBody{Error: err.Error(), Code: code, Parties: parties}
}

// printJSON prints v as one line of JSON.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}
