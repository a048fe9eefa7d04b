// The `./process` entry: what `linesight agent` runs, without loading the whole agent
// package. A line guard loads only its own part (see agent-process.ts).
export {
  runAgentProcess,
  type AgentProcessApp,
  type AgentProcessOptions,
} from './agent-process.ts';
