package main

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/audit"
	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/policy"
	"github.com/keyquorum/keyquorum/tss"
	"github.com/keyquorum/keyquorum/wallet"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

// The control API: HTTP/JSON on the Unix socket DIR/api.sock (or, with
// --api, TLS on a loopback TCP address; see endpoint.go), every request
// signed by an operator of the site (requestauth.go) whose roles allow its
// route (operators.go). Request bodies are the JSON objects below; a success
// answers 200 with the command's result object (what the client prints
// with --json), a failure, unknown paths included, answers with an
// errorBody and a status code matching its code.
const (
	pathStatus   = "/v1/status"
	pathKeygen   = "/v1/keygen"
	pathPresign  = "/v1/presign"
	pathSign     = "/v1/sign"
	pathSignPSBT = "/v1/sign-psbt"
	pathSignEth  = "/v1/sign-eth"
	pathPlan     = "/v1/plan"
	pathKeyLabel = "/v1/keys/label"
	// Administration: these change a site's keys or its stored state.
	pathReshare       = "/v1/reshare"
	pathReshareAccept = "/v1/reshare/accept"
	pathRotateSealKey = "/v1/rotate-seal-key"
	pathPreParamsGen  = "/v1/preparams/generate"
	pathPoolTarget    = "/v1/pools/target"
	pathPoolDrain     = "/v1/pools/drain"
	// pathBackup answers a backup of the site's store (application/x-tar,
	// hsmshare/FORMAT.md "Store backup"), not JSON.
	pathBackup = "/v1/backup"
	// pathRequests creates a request (the request workflow, request.go),
	// pathRequestsApprove adds an approval to one.
	pathRequests        = "/v1/requests"
	pathRequestsApprove = "/v1/requests/approve"
	// pathOperators lists (GET) and adds (POST) operators,
	// pathOperatorsRemove removes one.
	pathOperators       = "/v1/operators"
	pathOperatorsRemove = "/v1/operators/remove"
	// pathAuditEntry answers one entry of the site's audit log with its
	// sealed detail part opened (GET, ?seq=N): only the running site's
	// HSM can open it.
	pathAuditEntry = "/v1/audit/entry"

	maxRequestBody = 8 << 20
)

type keygenRequest struct {
	Parties   []string `json:"parties"`
	Threshold int      `json:"threshold"`
	// Label, if set, is this site's name for the new key.
	Label string `json:"label,omitempty"`
	// Network selects the Bitcoin network of btc_address (default regtest).
	Network string `json:"network,omitempty"`
}

type keygenResult struct {
	KeyID      string   `json:"key_id"`
	PublicKey  string   `json:"public_key"`
	ChainCode  string   `json:"chain_code"`
	BTCAddress string   `json:"btc_address"`
	ETHAddress string   `json:"eth_address"`
	Threshold  int      `json:"threshold"`
	Parties    []string `json:"parties"`
	Network    string   `json:"network"`
	Label      string   `json:"label,omitempty"`
}

// keyLabelRequest sets (or, with an empty label, removes) this site's
// label of a key; the result is the same object.
type keyLabelRequest struct {
	KeyID string `json:"key_id"`
	Label string `json:"label"`
}

// poolTargetRequest sets how many ready presignatures the site keeps in
// one of its own pools (0: none, the refill stops).
type poolTargetRequest struct {
	KeyID   string   `json:"key_id"`
	Signers []string `json:"signers,omitempty"`
	Path    string   `json:"path,omitempty"`
	Target  int      `json:"target"`
}

// poolDrainRequest discards the ready presignatures of a pool: the site's
// own (Initiator empty) or its parts of another site's.
type poolDrainRequest struct {
	KeyID     string   `json:"key_id"`
	Signers   []string `json:"signers,omitempty"`
	Path      string   `json:"path,omitempty"`
	Initiator string   `json:"initiator,omitempty"`
}

// poolResult is a pool's state after pools target or pools drain.
type poolResult struct {
	KeyID     string   `json:"key_id"`
	Signers   []string `json:"signers"`
	Path      string   `json:"path"`
	Initiator string   `json:"initiator"`
	Target    int      `json:"target"`
	Ready     int      `json:"ready"`
	Reserved  int      `json:"reserved"`
	Making    int      `json:"making"`
	// Drained is how many ready presignatures the drain discarded here.
	Drained int `json:"drained,omitempty"`
	// CoSigners says whether the other signers discarded their parts too
	// (a drain of the site's own pool).
	CoSigners *bool `json:"co_signers,omitempty"`
	// CoSignersError says why they could not be reached, if they could not.
	CoSignersError string `json:"co_signers_error,omitempty"`
}

type presignRequest struct {
	KeyID   string   `json:"key_id"`
	Signers []string `json:"signers,omitempty"`
	Path    string   `json:"path,omitempty"`
	Count   int      `json:"count"`
}

type presignResult struct {
	KeyID     string   `json:"key_id"`
	Signers   []string `json:"signers"`
	Path      string   `json:"path"`
	Initiator string   `json:"initiator"`
	Made      int      `json:"made"`
	Ready     int      `json:"ready"`
	Reserved  int      `json:"reserved"`
}

type signOptions struct {
	Signers  []string `json:"signers,omitempty"`
	Protocol string   `json:"protocol,omitempty"`
	// Approvals are people's approvals of the request's statement.
	Approvals []approvalJSON `json:"approvals,omitempty"`
}

// approvalJSON is one approval: the statement text and the armored SSH
// signature ssh-keygen -Y sign -n keyquorum-approval wrote for it.
type approvalJSON struct {
	Statement string `json:"statement"`
	Signature string `json:"signature"`
}

// planRequest asks the site what an intent signs and what its policy says.
type planRequest struct {
	KeyID string `json:"key_id"`
	// Intent is the intent's canonical encoding (policy.Intent.Bytes), base64.
	Intent string `json:"intent"`
	// ExpiresIn is how long the statement to approve stays valid, in
	// seconds (default one day).
	ExpiresIn int64          `json:"expires_in,omitempty"`
	Approvals []approvalJSON `json:"approvals,omitempty"`
}

type planResult struct {
	KeyID       string          `json:"key_id"`
	Kind        string          `json:"kind"`
	IntentHash  string          `json:"intent_hash"`
	SummaryHash string          `json:"summary_hash"`
	Summary     json.RawMessage `json:"summary"`
	Digests     []string        `json:"digests"`
	// Statement is the text approvers sign (valid until its expires line).
	Statement string `json:"statement"`
	// Decision is this site's policy on the request with the approvals given.
	Decision decisionJSON `json:"decision"`
}

type decisionJSON struct {
	Allowed   bool     `json:"allowed"`
	Rule      string   `json:"rule,omitempty"`
	Required  []string `json:"required,omitempty"`
	Counted   []string `json:"counted,omitempty"`
	Approvers []string `json:"approvers,omitempty"`
	Rejected  []string `json:"rejected,omitempty"`
	Reason    string   `json:"reason"`
}

type signRequest struct {
	KeyID  string `json:"key_id"`
	Digest string `json:"digest"`
	Path   string `json:"path,omitempty"`
	signOptions
}

type signResult struct {
	R         string   `json:"r"`
	S         string   `json:"s"`
	V         int      `json:"v"`
	DER       string   `json:"der"`
	PublicKey string   `json:"public_key"`
	Digest    string   `json:"digest"`
	Path      string   `json:"path"`
	Protocol  string   `json:"protocol"`
	Signers   []string `json:"signers"`
}

type signPSBTRequest struct {
	KeyID string `json:"key_id"`
	// PSBT is base64 (or hex of the binary form).
	PSBT    string   `json:"psbt"`
	Network string   `json:"network,omitempty"`
	Paths   []string `json:"paths,omitempty"`
	signOptions
}

type signPSBTResult struct {
	PSBT         string `json:"psbt"`
	TxHex        string `json:"tx_hex"`
	TxID         string `json:"txid"`
	Complete     bool   `json:"complete"`
	SignedInputs []int  `json:"signed_inputs"`
	// VSize is the virtual size of the signed transaction, and FeeRate
	// its fee per virtual byte; both only when Complete and every input
	// amount is known.
	VSize   int64   `json:"vsize,omitempty"`
	FeeRate float64 `json:"fee_rate_sat_vb,omitempty"`
	// Summary is what this site computed, from the PSBT alone, that it
	// signed (wallet.Summary's stable JSON form); every site of the
	// signer set computes and checks its own.
	Summary json.RawMessage `json:"summary"`
}

type signEthRequest struct {
	KeyID   string `json:"key_id"`
	Tx      string `json:"tx"`
	ChainID string `json:"chain_id"`
	Path    string `json:"path,omitempty"`
	signOptions
}

type signEthResult struct {
	RawTx string `json:"raw_tx"`
	Hash  string `json:"hash"`
	From  string `json:"from"`
	// Summary is what this site computed, from the transaction alone,
	// that it signed (wallet.Summary's stable JSON form).
	Summary json.RawMessage `json:"summary"`
}

// reshareRequest moves a key to a new committee and/or threshold.
type reshareRequest struct {
	KeyID     string   `json:"key_id"`
	Parties   []string `json:"parties"`
	Threshold int      `json:"threshold"`
	// OldParties are the members of the current committee that take part
	// (default all).
	OldParties []string `json:"old_parties,omitempty"`
	// Network selects the Bitcoin network of btc_address (default regtest).
	Network string `json:"network,omitempty"`
}

// reshareResult is the key after the reshare: the keygen fields (the
// same public key and addresses) and its new epoch.
type reshareResult struct {
	KeyID      string   `json:"key_id"`
	PublicKey  string   `json:"public_key"`
	ChainCode  string   `json:"chain_code"`
	BTCAddress string   `json:"btc_address"`
	ETHAddress string   `json:"eth_address"`
	Threshold  int      `json:"threshold"`
	Parties    []string `json:"parties"`
	Network    string   `json:"network"`
	Epoch      uint64   `json:"epoch"`
}

// reshareAcceptRequest is this site's operator's authorization of a
// reshare another site will propose.
type reshareAcceptRequest struct {
	KeyID     string   `json:"key_id"`
	Parties   []string `json:"parties"`
	Threshold int      `json:"threshold"`
	// ExpiresIn is how long the authorization lasts, in seconds.
	ExpiresIn int64 `json:"expires_in"`
}

type reshareAcceptResult struct {
	KeyID     string    `json:"key_id"`
	Parties   []string  `json:"parties"`
	Threshold int       `json:"threshold"`
	Expires   time.Time `json:"expires"`
}

// preParamsGenerateRequest asks the site to generate sets now.
type preParamsGenerateRequest struct {
	Count int `json:"count"`
}

// preParamsResult is the pre-parameter pool (status, and after generate).
type preParamsResult struct {
	Ready      int    `json:"ready"`
	Generating int    `json:"generating"`
	Target     int    `json:"target"`
	Generated  int    `json:"generated"`
	Generation bool   `json:"generation"`
	Made       int    `json:"made,omitempty"`
	LastError  string `json:"last_error,omitempty"`
}

// requestCreateRequest asks the site to keep a new request.
type requestCreateRequest struct {
	KeyID string `json:"key_id"`
	// Intent is the intent's canonical encoding, base64.
	Intent    string `json:"intent"`
	ExpiresIn int64  `json:"expires_in,omitempty"`
}

// requestApproveRequest adds an approval to a request.
type requestApproveRequest struct {
	ID string `json:"id"`
	// Signature is the armored SSH signature of the request's statement.
	Signature string `json:"signature"`
}

// operatorAddRequest registers an operator, or sets the roles of one.
type operatorAddRequest struct {
	Name  string   `json:"name"`
	Key   string   `json:"key"`
	Roles []string `json:"roles"`
}

type operatorRemoveRequest struct {
	Name string `json:"name"`
}

type operatorsResult struct {
	Operators []operator `json:"operators"`
}

// auditShowResult is one audit entry with its detail part opened by the
// site (GET pathAuditEntry?seq=N, kqnode audit show).
type auditShowResult struct {
	// Entry is the entry's canonical JSON, as audit export prints it.
	Entry json.RawMessage `json:"entry"`
	// Detail is the opened detail part when it is JSON, as a
	// sign.authorize entry's is (keyquorum.SignDetail: the whole intent
	// and its summary); absent when the entry has none.
	Detail json.RawMessage `json:"detail,omitempty"`
	// DetailBase64 is the opened detail part when it is not JSON.
	DetailBase64 string `json:"detail_base64,omitempty"`
}

// statusResult is keyquorum.Status plus what only kqnode knows.
type statusResult struct {
	*keyquorum.Status
	Home     string   `json:"home"`
	API      string   `json:"api"`
	Warnings []string `json:"warnings"`
	// Names are the sites' names from the peer file, by peer ID (only
	// those that have one).
	Names map[string]string `json:"names,omitempty"`
}

// errorBody is every failure's answer, and what a client prints on stdout
// with --json when a command fails.
type errorBody struct {
	// Error says what failed, for whom, and what to do.
	Error string `json:"error"`
	// Code is stable for scripts (see errorCodes).
	Code string `json:"code"`
	// Parties are the sites the error is about (timeouts, refusals,
	// culprits), when there are any.
	Parties []string `json:"parties,omitempty"`
}

// Error codes.
const (
	codeBadRequest       = "bad_request"              // malformed input: digest, PSBT, transaction, path, flags
	codeUnauthenticated  = "unauthenticated"          // the request is not signed by an operator of the site (or replayed, stale, changed)
	codeForbidden        = "forbidden"                // the operator's roles do not allow the command
	codeUnknownKey       = "unknown_key"              // this site holds no share of the key
	codeNotInCommittee   = "not_in_committee"         // a named party is not in the key's committee
	codeNoPresignature   = "no_presignature"          // gg20 asked, the pool is empty
	codeNoPreParams      = "no_preparams"             // keygen needs a pre-parameter set the site does not have yet
	codeTimeout          = "timeout"                  // a round timed out; parties did not answer
	codeUnreachable      = "unreachable"              // parties could not be reached
	codeRefused          = "refused"                  // a party refused (its checks or policy)
	codePolicy           = "policy"                   // this site's own signing policy refused the request
	codeAuditInvalid     = "audit_invalid"            // kqnode audit verify: the log does not verify; audit show: the entry's sealed detail is damaged or does not open
	codeAudit            = "audit"                    // the site (or, with parties, another site) cannot write its audit log and refuses to sign
	codeAborted          = "aborted"                  // a party aborted the session
	codeCulprit          = "culprit"                  // a party provably misbehaved
	codeBusy             = "busy"                     // too many sessions at once
	codeUnavailable      = "unavailable"              // the site is stopping or its engine stopped
	codeNotRunning       = "not_running"              // client: no site answers for --home
	codeNotFound         = "not_found"                // no such API endpoint, or no such audit entry
	codeUnsafeFile       = "unsafe_file"              // a file the site trusts is open to other users (see trust.go)
	codeNotAuthenticated = "server_not_authenticated" // client: what listens at the endpoint is not the site
	codeInternal         = "internal"                 // anything else; see the site's log
)

// classify maps an error to its code, HTTP status and parties.
func classify(err error) (code string, status int, parties []string) {
	var (
		rt  *tss.RoundTimeoutError
		un  *tss.UnreachableError
		ref *tss.RefusedError
		ab  *tss.AbortedError
		cul *tss.CulpritError
		eq  *tss.EquivocationError
	)
	if code, status, ok := bundleCode(err); ok {
		return code, status, nil
	}
	switch {
	case errors.As(err, &rt):
		return codeTimeout, 504, partyStrings(rt.Parties)
	case errors.As(err, &un):
		return codeUnreachable, 504, partyStrings(un.Parties)
	case errors.As(err, &ref):
		// A site that refused for a condition with its own code (no
		// pre-parameters, no share of the key, ...) gets that code, the
		// same as when this site finds it, with the site in parties.
		if code, status, ok := remoteCode(ref.Code); ok {
			return code, status, []string{string(ref.Party)}
		}
		return codeRefused, 502, []string{string(ref.Party)}
	case errors.As(err, &ab):
		return codeAborted, 502, []string{string(ab.Party)}
	case errors.As(err, &cul):
		return codeCulprit, 502, partyStrings(cul.Parties)
	case errors.As(err, &eq):
		return codeCulprit, 502, []string{string(eq.Sender), string(eq.Reporter)}
	case errors.Is(err, errAuditBad):
		return codeAuditInvalid, 422, nil
	case errors.Is(err, keyquorum.ErrAudit):
		return codeAudit, 503, nil
	case errors.Is(err, keyquorum.ErrAuditDetail), errors.Is(err, audit.ErrCorrupted):
		return codeAuditInvalid, 422, nil
	case errors.Is(err, audit.ErrNotFound):
		return codeNotFound, 404, nil
	case errors.Is(err, tss.ErrPolicy), errors.Is(err, keyquorum.ErrNoSigningPolicy), errors.Is(err, policy.ErrRefused):
		return codePolicy, 403, nil
	case errors.Is(err, tss.ErrUnknownKey):
		return codeUnknownKey, 404, nil
	case errors.Is(err, tss.ErrNotInCommittee):
		return codeNotInCommittee, 400, nil
	case errors.Is(err, tss.ErrNoPresignature):
		return codeNoPresignature, 409, nil
	case errors.Is(err, tss.ErrNoPreParams):
		return codeNoPreParams, 409, nil
	case errors.Is(err, tss.ErrBusy):
		return codeBusy, 503, nil
	case errors.Is(err, hsmshare.ErrRandomFailed):
		// This site's own token generator failed; a co-signer's shows
		// as that site's abort.
		return codeTokenRNGFailed, 503, nil
	case errors.Is(err, keyquorum.ErrClosed), errors.Is(err, tss.ErrEngineClosed),
		errors.Is(err, context.Canceled), errors.Is(err, hsmshare.ErrClosed):
		return codeUnavailable, 503, nil
	case isBadInput(err):
		return codeBadRequest, 400, nil
	}
	return codeInternal, 500, nil
}

// remoteCode maps the code of another site's refusal to the code the same
// condition has when this site finds it. Refusals by another site's policy
// or checks stay "refused": "policy" is this site's own policy.
func remoteCode(refusal string) (code string, status int, ok bool) {
	switch refusal {
	case codeNoPreParams:
		return codeNoPreParams, 409, true
	case codeUnknownKey:
		return codeUnknownKey, 404, true
	case codeNotInCommittee:
		return codeNotInCommittee, 400, true
	case codeNoPresignature:
		return codeNoPresignature, 409, true
	case codeBusy:
		return codeBusy, 503, true
	case refusalNotRecorded:
		// The other site could not write its audit log, so it sent no
		// share: the same condition as this site's ErrAudit.
		return codeAudit, 503, true
	}
	return "", 0, false
}

// refusalNotRecorded is the refusal code of tss.ErrNotRecorded: a site
// used presignatures but could not record their use in its audit log.
const refusalNotRecorded = "not_recorded"

// isBadInput reports errors caused by the request's content.
func isBadInput(err error) bool {
	for _, s := range []error{
		tss.ErrBadRequest, hd.ErrHardened, hd.ErrMalformedPath, hd.ErrInvalidChild,
		wallet.ErrInvalidPSBT, wallet.ErrInvalidTransaction, wallet.ErrChainID, wallet.ErrUnsupportedTxType,
		wallet.ErrNothingToSign, wallet.ErrTaproot, wallet.ErrUnsupportedScript, wallet.ErrSighashType,
		wallet.ErrMissingUTXO, wallet.ErrUTXOMismatch, wallet.ErrAlreadySigned, wallet.ErrAddressType,
		wallet.ErrSignerKey, errBadRequest,
		policy.ErrIntent, policy.ErrIntentTooLarge, policy.ErrNothingToSign, policy.ErrApprovalMalformed,
		// A key ID the store refuses as a file name.
		hsmshare.ErrInvalidName,
	} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// errBadRequest marks request decoding failures in the API server.
var errBadRequest = errors.New("bad request")

func partyStrings(ps []tss.PartyID) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}

func partyIDs(ss []string) []tss.PartyID {
	if len(ss) == 0 {
		return nil
	}
	out := make([]tss.PartyID, len(ss))
	for i, s := range ss {
		out[i] = tss.PartyID(s)
	}
	return out
}
