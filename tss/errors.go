package tss

import "errors"

// ErrMessageTooLarge is returned for a payload over MaxPayloadSize.
var ErrMessageTooLarge = errors.New("tss: message payload exceeds MaxPayloadSize")
