// Package jsonscan follows the nesting of JSON text one byte at a time,
// without decoding it: strings and their escapes are skipped, braces and
// brackets counted. The runner uses it to find the end of an agent's answer
// in a growing stream, the HTTP API to refuse bodies nested too deep before
// decoding them. It checks nothing else: encoding/json validates the text
// afterwards.
package jsonscan

// Nesting is the state of a scan: how deep the text is nested at the last
// byte fed to [Nesting.Step]. The zero value starts outside any value.
type Nesting struct {
	// Depth is how many arrays and objects are open.
	Depth   int
	inStr   bool // inside a string
	escaped bool // after a backslash inside a string
}

// Step feeds one byte and returns +1 if it opened an array or an object, -1
// if it closed one, and 0 otherwise (inside a string, or any other byte).
func (n *Nesting) Step(c byte) int {
	switch {
	case n.inStr:
		switch {
		case n.escaped:
			n.escaped = false
		case c == '\\':
			n.escaped = true
		case c == '"':
			n.inStr = false
		}
	case c == '"':
		n.inStr = true
	case c == '{' || c == '[':
		n.Depth++
		return 1
	case c == '}' || c == ']':
		n.Depth--
		return -1
	}
	return 0
}

// MaxDepth returns the deepest nesting of arrays and objects in data.
func MaxDepth(data []byte) int {
	var n Nesting
	deepest := 0
	for _, c := range data {
		if n.Step(c) > 0 {
			deepest = max(deepest, n.Depth)
		}
	}
	return deepest
}
