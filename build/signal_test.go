package build

import "testing"

func TestLinuxSignal(t *testing.T) {
	for sig, want := range map[string]bool{
		"SIGTERM": true, "term": true, "SigInt": true, "9": true, "1": true, "64": true,
		"SIGRTMIN": true, "SIGRTMIN+3": true, "SIGRTMIN+15": true, "SIGRTMAX-14": true, "rtmax-1": true, "SIGRTMAX": true,
		"": false, "SIG": false, "0": false, "65": false, "+9": false, "-9": false, "SIGFOO": false,
		"SIGRTMIN+0": false, "SIGRTMIN+16": false, "SIGRTMAX-15": false, "SIGRTMIN++3": false, "SIGRTMIN+": false, "SIGINFO": false,
	} {
		if got := linuxSignal(sig); got != want {
			t.Errorf("linuxSignal(%q) = %v, want %v", sig, got, want)
		}
	}
}
