package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// receiverEnv, set in the environment, makes the program serve as the
// receiver for a parent run instead of measuring.
const receiverEnv = "HERALD_LOADTEST_RECEIVER"

// receiver is the loopback endpoint the baseline and herald send to.
type receiver struct {
	url   string
	close func()
	// cpu returns the CPU time, in seconds, the receiver's process has
	// used; nil when the receiver runs in this process.
	cpu func() float64
}

// handler answers every request 204 after reading its body: the cheapest
// receiver there is, so the measurement is of the sending side.
func handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		w.WriteHeader(http.StatusNoContent)
	})
}

func listen() (net.Listener, *http.Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	return ln, &http.Server{Handler: handler(), ReadHeaderTimeout: 5 * time.Second}, nil
}

// startReceiverHere serves in this process.
func startReceiverHere() (*receiver, error) {
	ln, srv, err := listen()
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return &receiver{url: "http://" + ln.Addr().String() + "/hook", close: func() {
		_ = srv.Close()
		<-done
	}}, nil
}

// serveReceiver is the child's side: it serves on loopback, writes its URL
// on out, answers each line on in with the CPU seconds it has used, and
// stops when in ends (the parent closed it, or died).
func serveReceiver(in io.Reader, out io.Writer) int {
	ln, srv, err := listen()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest receiver:", err)
		return 1
	}
	go func() { _ = srv.Serve(ln) }()
	fmt.Fprintf(out, "http://%s/hook\n", ln.Addr())
	lines := bufio.NewScanner(in)
	for lines.Scan() {
		fmt.Fprintf(out, "%.6f\n", cpuSeconds())
	}
	_ = srv.Close()
	return 0
}

// startReceiverProcess starts this program again as the receiver.
func startReceiverProcess() (*receiver, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), receiverEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	answers := bufio.NewReader(stdout)
	line, err := answers.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "http://") {
		stop()
		return nil, errors.Join(errors.New("the receiver process did not start"), err)
	}
	var mu sync.Mutex
	cpu := func() float64 {
		mu.Lock()
		defer mu.Unlock()
		if _, err := io.WriteString(stdin, "\n"); err != nil {
			return 0
		}
		line, err := answers.ReadString('\n')
		if err != nil {
			return 0
		}
		s, _ := strconv.ParseFloat(strings.TrimSpace(line), 64)
		return s
	}
	return &receiver{url: strings.TrimSpace(line), close: stop, cpu: cpu}, nil
}
