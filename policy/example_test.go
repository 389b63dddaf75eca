package policy_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"golang.org/x/crypto/ssh"

	"github.com/keyquorum/keyquorum/policy"
	"github.com/keyquorum/keyquorum/wallet/hd"
)

// exampleKey is a site's description of a 2-of-3 key: group public key,
// chain code and committee, as its key store holds them.
func exampleKey() policy.Key {
	seed := sha256.Sum256([]byte("example group key"))
	cc := sha256.Sum256([]byte("example chain code"))
	return policy.Key{
		ID:        "0f3c9a7e",
		PublicKey: secp256k1.PrivKeyFromBytes(seed[:]).PubKey().SerializeCompressed(),
		ChainCode: cc[:],
		Committee: []string{"12D3KooWsiteA", "12D3KooWsiteB", "12D3KooWsiteC"},
	}
}

// A site derives what an intent asks it to sign from the intent bytes and
// its own key data.
func ExampleDerive() {
	in, err := policy.NewPersonalMessageIntent(hd.Path{44, 60}, []byte("Sign in to example.com"))
	if err != nil {
		panic(err)
	}
	received, err := policy.ParseIntent(in.Bytes()) // what a peer receives
	if err != nil {
		panic(err)
	}
	plan, err := policy.Derive(context.Background(), received, exampleKey())
	if err != nil {
		panic(err)
	}
	fmt.Println(plan.Summary.Kind)
	fmt.Println(len(plan.Digests), "digest at", plan.Digests[0].Path)
	fmt.Println(plan.Covers(plan.Digests[0].Digest, hd.Path{44, 60}))
	// Output:
	// ethereum-personal-message
	// 1 digest at m/44/60
	// true
}

// A policy is evaluated with the site's clock; a rule that needs approvals
// refuses until they are there.
func ExamplePolicy_Evaluate() {
	pol, err := policy.Parse("site.policy", []byte(`keyquorum-policy 1
approver alice ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHCfP2em0x9FnzP4NDXQdWyHKI6eJyuJ2sHBzQcU2Av6 alice@treasury
group treasury alice

rule sign-in allow
  kind == "ethereum-personal-message" && message.text.startsWith("Sign in to ")

rule other-messages allow treasury=1
  kind == "ethereum-personal-message"
`))
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	for _, text := range []string{"Sign in to example.com", "Transfer my account"} {
		in, _ := policy.NewPersonalMessageIntent(hd.Path{44, 60}, []byte(text))
		plan, _ := policy.Derive(context.Background(), in, exampleKey())
		d, _ := pol.Evaluate(context.Background(), plan, policy.Input{Now: now})
		fmt.Println(d)
	}
	// Output:
	// allowed by rule sign-in: no approvals required
	// policy: refused by rule other-messages: needs 1 of treasury from distinct approvers; no verified approval counts
}

// A syntax error in a rule names the file, line and column.
func ExampleParse_error() {
	_, err := policy.Parse("site.policy", []byte(`keyquorum-policy 1
rule small allow
  kind == "bitcoin-psbt" &&
  btc.sent_sat <=
`))
	fmt.Println(strings.SplitN(err.Error(), ":", 5)[:4])
	// Output:
	// [site.policy 4 18  rule small]
}

// An approver signs the statement of a plan with an SSH key (here in Go;
// ssh-keygen -Y sign -n keyquorum-approval does the same), and the site
// verifies it against the key in its own policy.
func ExampleSignStatement() {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	pol, err := policy.Parse("site.policy", []byte("keyquorum-policy 1\n"+
		"approver alice "+string(ssh.MarshalAuthorizedKey(signer.PublicKey()))+
		"group treasury alice\n"+
		"rule one-approval allow treasury=1\n  true\n"))
	if err != nil {
		panic(err)
	}
	in, _ := policy.NewRawDigestIntent(hd.Path{7}, sha256.Sum256([]byte("payload")))
	plan, _ := policy.Derive(context.Background(), in, exampleKey())
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)

	statement := plan.Statement(now.Add(time.Hour)).Text()
	approval, err := policy.SignStatement(rand.Reader, signer, statement)
	if err != nil {
		panic(err)
	}
	evidence, _ := policy.EncodeApprovals([]policy.Approval{*approval})

	received, _ := policy.DecodeApprovals(evidence)
	approvers, rejected := pol.VerifyApprovals(plan, received, now)
	fmt.Println(strings.SplitN(string(statement), "\n", 2)[0])
	fmt.Println(approvers, len(rejected))
	// The approval is valid, but a raw digest needs an allow-raw-digest rule.
	_, err = pol.Evaluate(context.Background(), plan, policy.Input{Now: now, Approvals: received})
	fmt.Println(err)
	// Output:
	// keyquorum-approval v1
	// [alice] 0
	// policy: refused: no rule matches this raw-digest intent (raw digests need a rule with action allow-raw-digest)
}

// Authorize records what it allows, so a daily limit holds across
// requests; the record is saved and restored across restarts.
func ExamplePolicy_Authorize() {
	pol, _ := policy.Parse("site.policy", []byte(`keyquorum-policy 1
rule daily-eth-limit allow
  kind == "ethereum-transaction" && velocity.spent("eth:1", duration("24h")) <= 3e18
`))
	vel, _ := policy.NewVelocity(0)
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	for nonce := range uint64(2) {
		plan, _ := policy.Derive(context.Background(), exampleTransfer(nonce), exampleKey())
		_, err := pol.Authorize(context.Background(), plan, policy.Input{Now: now, Velocity: vel})
		fmt.Println(nonce, err)
		saved, _ := vel.MarshalBinary() // persist sealed before signing
		vel = new(policy.Velocity)
		_ = vel.UnmarshalBinary(saved) // after a restart
	}
	// Output:
	// 0 <nil>
	// 1 policy: refused: no rule matches this ethereum-transaction intent
}

// exampleTransfer is an unsigned EIP-1559 transfer of 2 ETH on mainnet.
func exampleTransfer(nonce uint64) *policy.Intent {
	to := common.HexToAddress("0xB07c007061F9D32670E068389B1C5b5A2c3BA963")
	tx := types.NewTx(&types.DynamicFeeTx{
		ChainID: big.NewInt(1), Nonce: nonce, GasTipCap: big.NewInt(2e9), GasFeeCap: big.NewInt(30e9),
		Gas: 21000, To: &to, Value: new(big.Int).Mul(big.NewInt(2), big.NewInt(1e18)),
	})
	raw, _ := tx.MarshalBinary()
	in, err := policy.NewEthereumTxIntent(1, hd.Path{44, 60}, raw)
	if err != nil {
		panic(err)
	}
	return in
}
