// Go peers of weft-bench-runtime (bench/runtime/bench_runtime.cpp): same subcommands, same
// checksums on the last line of stdout.
// Usage: runtime_peers <skynet|pingpong|spawn|yield|sleepers|select> [n]
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func skynet(c chan int, num, size, div int) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int)
	for i := 0; i < div; i++ {
		subNum := num + i*(size/div)
		go skynet(rc, subNum, size/div, div)
	}
	sum := 0
	for i := 0; i < div; i++ {
		sum += <-rc
	}
	c <- sum
}

func residentKiB() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, res int64
	fmt.Sscan(string(b), &size, &res)
	return res * int64(os.Getpagesize()) / 1024
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: runtime_peers skynet|pingpong|spawn|yield|sleepers|select [n]")
		os.Exit(2)
	}
	n := 0
	if len(os.Args) > 2 {
		n, _ = strconv.Atoi(os.Args[2])
	}
	start := time.Now()
	var result int64
	switch os.Args[1] {
	case "skynet":
		if n == 0 {
			n = 1000000
		}
		c := make(chan int)
		go skynet(c, 0, n, 10)
		result = int64(<-c)
	case "pingpong":
		if n == 0 {
			n = 200000
		}
		ping, pong := make(chan int), make(chan int)
		go func() {
			for v := range ping {
				pong <- v + 1
			}
		}()
		var sum int64
		for i := 0; i < n; i++ {
			ping <- i
			sum += int64(<-pong)
		}
		close(ping)
		result = sum
	case "spawn":
		if n == 0 {
			n = 1000000
		}
		var sum int64
		res := make([]int64, 1000)
		for b := 0; b < n; b += 1000 {
			var wg sync.WaitGroup
			for i := b; i < b+1000 && i < n; i++ {
				wg.Add(1)
				go func(i int) { res[i-b] = int64(i); wg.Done() }(i)
			}
			wg.Wait()
			for i := b; i < b+1000 && i < n; i++ {
				sum += res[i-b]
			}
		}
		result = sum
	case "yield":
		if n == 0 {
			n = 1000000
		}
		var count int64
		var wg sync.WaitGroup
		for k := 0; k < 2; k++ {
			wg.Add(1)
			go func() {
				for i := 0; i < n; i++ {
					runtime.Gosched()
				}
				atomic.AddInt64(&count, int64(n))
				wg.Done()
			}()
		}
		wg.Wait()
		result = count
	case "sleepers":
		if n == 0 {
			n = 100000
		}
		before := residentKiB()
		var woke int64
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() { time.Sleep(time.Second); atomic.AddInt64(&woke, 1); wg.Done() }()
		}
		time.Sleep(500 * time.Millisecond)
		during := residentKiB()
		wg.Wait()
		fmt.Fprintf(os.Stderr, "sleepers: %.2f KiB resident per sleeping goroutine\n", float64(during-before)/float64(n))
		fmt.Printf("kib_per_task %.2f\n", float64(during-before)/float64(n))
		result = woke
	case "select":
		if n == 0 {
			n = 200000
		}
		a, b := make(chan int), make(chan int)
		go func() {
			for i := 0; i < n; i++ {
				a <- 1
			}
		}()
		go func() {
			for i := 0; i < n; i++ {
				b <- 2
			}
		}()
		var sum int64
		for i := 0; i < 2*n; i++ {
			select {
			case v := <-a:
				sum += int64(v)
			case v := <-b:
				sum += int64(v)
			}
		}
		result = sum
	default:
		fmt.Fprintln(os.Stderr, "unknown benchmark", os.Args[1])
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "%s: %.3f s (GOMAXPROCS %d)\n", os.Args[1], time.Since(start).Seconds(), runtime.GOMAXPROCS(0))
	fmt.Println(result)
}
