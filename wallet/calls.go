package wallet

import (
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// knownCall is a contract function whose arguments the summary decodes.
// Only static arguments of type address and uint256 are supported, which
// covers the ERC-20 token functions that move value.
type knownCall struct {
	signature string   // canonical signature, hashed for the selector
	names     []string // argument names, for the summary
	types     []string // "address" or "uint256"
}

// knownCalls are the ERC-20 functions (EIP-20) that move or authorize the
// movement of tokens.
var knownCalls = []knownCall{
	{"transfer(address,uint256)", []string{"to", "amount"}, []string{"address", "uint256"}},
	{"approve(address,uint256)", []string{"spender", "amount"}, []string{"address", "uint256"}},
	{"transferFrom(address,address,uint256)", []string{"from", "to", "amount"}, []string{"address", "address", "uint256"}},
}

// maxUint256 is 2^256 − 1, the "unlimited" ERC-20 allowance.
var maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

// decodeKnownCall decodes data as a call of one of knownCalls. It returns nil
// when the selector is unknown or the arguments are not a strict ABI
// encoding, and warnings a person approving the call should read.
func decodeKnownCall(data []byte) (*ContractCall, []string) {
	for _, kc := range knownCalls {
		sel := crypto.Keccak256([]byte(kc.signature))[:4]
		if string(data[:4]) != string(sel) {
			continue
		}
		args := data[4:]
		if len(args) != 32*len(kc.types) {
			return nil, []string{fmt.Sprintf("call data has selector of %s but %d argument bytes, want %d; not decoded", kc.signature, len(args), 32*len(kc.types))}
		}
		call := &ContractCall{Method: kc.signature}
		var warnings []string
		for n, typ := range kc.types {
			word := args[32*n : 32*n+32]
			var value string
			switch typ {
			case "address":
				for _, b := range word[:12] {
					if b != 0 {
						return nil, []string{fmt.Sprintf("argument %s of %s is not a valid address; not decoded", kc.names[n], kc.signature)}
					}
				}
				value = common.BytesToAddress(word[12:]).Hex()
			case "uint256":
				v := new(big.Int).SetBytes(word)
				value = v.String()
				if kc.names[n] == "amount" && kc.signature == knownCalls[1].signature && v.Cmp(maxUint256) == 0 {
					warnings = append(warnings, "approve grants an unlimited token allowance")
				}
			}
			call.Args = append(call.Args, CallArg{Name: kc.names[n], Type: typ, Value: value})
		}
		return call, warnings
	}
	return nil, nil
}
