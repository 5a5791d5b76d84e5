// Package shell reads a build step's command the way a POSIX shell splits
// it into simple commands, well enough for the cache package's presets to
// find the commands that defeat their caches (Preset.Warnings): quotes,
// escapes, line continuations, comments, &&, ||, ;, &, pipes, subshells,
// redirections, here-documents, leading variable assignments, wrappers such
// as sudo and env, and nested sh -c scripts. It does not run anything:
// command substitutions are kept as text and unknown variables are not
// expanded.
//
// Its API is Commands, which returns the simple commands of a step's argv
// as Command values.
package shell
