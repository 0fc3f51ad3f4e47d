package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"time"

	"kzprobe/lab"
	"kzprobe/probe/chain"
)

// labArgs is what the lab process is asked to start: the first line its
// parent writes to its stdin ([ServeLab]).
type labArgs struct {
	Scenario string        `json:"scenario"`
	RTT      time.Duration `json:"rtt_ns"`
	// Dir is the folder for the lab's files.
	Dir string `json:"dir"`
	// CPUProfile is a file for the lab's CPU profile; empty means none.
	CPUProfile string `json:"cpu_profile"`
}

// labInfo is what the lab process tells the client: the addresses of a
// lab.Lab, the sites, and the files.
type labInfo struct {
	Net               string         `json:"net"`
	Port              int            `json:"port"`
	LocalDNS          string         `json:"local_dns"`
	DoHURL            string         `json:"doh_url"`
	ControlServerName string         `json:"control_server_name"`
	ControlServerURL  string         `json:"control_server_url"`
	Sites             []lab.SiteInfo `json:"sites"`
	Files             lab.Files      `json:"files"`
	// SNIEndpoint and SNIEndpointPin are the lab's neutral SNI endpoint
	// (behind its middlebox) and its key pin, for a sweep.
	SNIEndpoint    netip.AddrPort `json:"sni_endpoint"`
	SNIEndpointPin string         `json:"sni_endpoint_pin"`
}

// addresses is the lab.Lab that info describes, as far as a client needs:
// its addresses.
func (info labInfo) addresses() *lab.Lab {
	pin, _ := chain.ParsePin(info.SNIEndpointPin)
	return &lab.Lab{
		Port: info.Port, LocalDNS: info.LocalDNS, DoHURL: info.DoHURL,
		ControlServerName: info.ControlServerName, ControlServerURL: info.ControlServerURL,
		SNIEndpointAddr: info.SNIEndpoint, SNIEndpointPin: pin,
	}
}

// labCPU is each later line of the lab process: its own CPU so far.
type labCPU struct {
	CPU float64 `json:"cpu_s"`
}

// startLab starts the scenario's lab and writes its files into a.Dir.
func startLab(a labArgs) (*lab.Lab, labInfo, error) {
	behaviours, base, err := sites(a.Scenario)
	if err != nil {
		return nil, labInfo{}, err
	}
	l, err := lab.Start(lab.Config{Scenario: lab.Scenario{Name: "bench-" + a.Scenario, Sites: append(behaviours, base), Latency: a.RTT}})
	if err != nil {
		return nil, labInfo{}, fmt.Errorf("starting the lab: %w", err)
	}
	files, err := l.WriteFiles(a.Dir)
	if err != nil {
		l.Close()
		return nil, labInfo{}, fmt.Errorf("writing the lab's files: %w", err)
	}
	return l, labInfo{
		Net: l.Net.String(), Port: l.Port, LocalDNS: l.LocalDNS, DoHURL: l.DoHURL,
		ControlServerName: l.ControlServerName, ControlServerURL: l.ControlServerURL,
		Sites: l.Sites(), Files: files,
		SNIEndpoint: l.SNIEndpointAddr, SNIEndpointPin: l.SNIEndpointPin.String(),
	}, nil
}

// ServeLab is the lab process that [Config.LabCommand] starts: it reads
// what to start from the first line of stdin, starts that lab, writes its
// addresses as one JSON line to stdout, answers each further line of stdin
// with a line of its CPU so far, and serves until stdin closes or ctx is
// done, then writes its CPU a last time.
func ServeLab(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	in := bufio.NewScanner(stdin)
	var a labArgs
	if !in.Scan() {
		return fmt.Errorf("%w: the lab process read nothing on stdin", ErrBadConfig)
	}
	if err := json.Unmarshal(in.Bytes(), &a); err != nil || a.Dir == "" {
		return fmt.Errorf("%w: the lab process needs a scenario and a folder on stdin, got %q", ErrBadConfig, in.Text())
	}
	l, info, err := startLab(a)
	if err != nil {
		return err
	}
	defer l.Close()
	if a.CPUProfile != "" {
		stop, err := startCPUProfile(a.CPUProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	out := json.NewEncoder(stdout)
	if err := out.Encode(info); err != nil {
		return err
	}
	eof := make(chan struct{})
	go func() {
		defer close(eof)
		for in.Scan() {
			if out.Encode(labCPU{CPU: cpuSeconds()}) != nil {
				return
			}
		}
	}()
	select {
	case <-eof:
	case <-ctx.Done():
	}
	l.Close()
	return out.Encode(labCPU{CPU: cpuSeconds()})
}

// runningLab is the lab a bench runs against, in a child process or not.
type runningLab struct {
	info labInfo
	// cpu returns the lab process's CPU so far, s (0 for a lab in this
	// process).
	cpu   func() float64
	close func()
}

// startLabHere starts the lab in this process.
func startLabHere(a labArgs) (*runningLab, error) {
	l, info, err := startLab(a)
	if err != nil {
		return nil, err
	}
	return &runningLab{info: info, cpu: func() float64 { return 0 }, close: func() { l.Close() }}, nil
}

// startLabProcess starts cmd (the lab process, [ServeLab]), asks it for
// the lab of a and reads its addresses. The process ends with ctx.
func startLabProcess(ctx context.Context, cmd *exec.Cmd, a labArgs, stderr io.Writer) (*runningLab, error) {
	cmd.Stderr = stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the lab process: %w", err)
	}
	kill := func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
	out := bufio.NewReader(outPipe)
	var info labInfo
	err = json.NewEncoder(in).Encode(a)
	if err == nil {
		var line []byte
		if line, err = out.ReadBytes('\n'); err == nil {
			err = json.Unmarshal(line, &info)
		}
	}
	if err != nil {
		kill()
		return nil, fmt.Errorf("the lab process did not start: %v", err)
	}
	stop := context.AfterFunc(ctx, kill)
	readCPU := func() float64 {
		var c labCPU
		if line, err := out.ReadBytes('\n'); err == nil {
			json.Unmarshal(line, &c)
		}
		return c.CPU
	}
	return &runningLab{info: info,
		cpu: func() float64 {
			if _, err := io.WriteString(in, "cpu\n"); err != nil {
				return 0
			}
			return readCPU()
		},
		close: func() {
			stop()
			in.Close()
			readCPU()
			cmd.Wait()
		}}, nil
}
