/**
 * Every CLI command, loaded lazily so `--help` and light commands start fast
 * (tfjs alone takes ~0.5 s to import). Add a line here for a new command.
 */
import type { Command } from './command.js';

export interface CommandEntry {
  name: string;
  summary: string;
  load: () => Promise<Command>;
}

export const COMMANDS: CommandEntry[] = [
  {
    name: 'demo',
    summary: 'plan one multi-step simulated episode with the shipped tiny model and write a GIF',
    load: async () => (await import('./demo.js')).demoCommand,
  },
  {
    name: 'backend',
    summary: 'show which tensor backends load here and which `auto` picks',
    load: async () => (await import('./backend.js')).backendCommand,
  },
  {
    name: 'model info',
    summary: 'parameter counts per part for a model config',
    load: async () => (await import('./model.js')).modelInfoCommand,
  },
  {
    name: 'model run',
    summary: 'evaluate an official-layout Self-Flow checkpoint on named input tensors',
    load: async () => (await import('./model.js')).modelRunCommand,
  },
  {
    name: 'model probe',
    summary: 'does the world model listen to the action? imagined vs simulated futures of six displacements',
    load: async () => (await import('./probe.js')).modelProbeCommand,
  },
  {
    name: 'model read-goals',
    summary: "the state reader's errors on goal pictures: read against recorded gripper positions and states",
    load: async () => (await import('./read-goals.js')).modelReadGoalsCommand,
  },
  {
    name: 'model train-reader',
    summary: "train the state reader: the gripper's position and closedness read off a picture",
    load: async () => (await import('./reader.js')).modelTrainReaderCommand,
  },
  {
    name: 'model train-policy',
    summary: 'train the action policy: action chunks from the current picture, the robot state and the instruction',
    load: async () => (await import('./policy.js')).modelTrainPolicyCommand,
  },
  {
    name: 'model import',
    summary: 'import an official Self-Flow checkpoint into a world-model config',
    load: async () => (await import('./model.js')).modelImportCommand,
  },
  {
    name: 'data inspect',
    summary: 'shards, episodes, steps, features, images and instructions of an RLDS dataset',
    load: async () => (await import('./data.js')).dataInspectCommand,
  },
  {
    name: 'data stats',
    summary: 'per-dimension action statistics used to normalise actions',
    load: async () => (await import('./data.js')).dataStatsCommand,
  },
  {
    name: 'finetune',
    summary: 'train a Self-Flow world model on RT-1-format (RLDS) episodes',
    load: async () => (await import('./finetune.js')).finetuneCommand,
  },
  {
    name: 'sim tasks',
    summary: 'list the simulator tasks with instructions and stages',
    load: async () => (await import('./sim.js')).simTasksCommand,
  },
  { name: 'sim render', summary: 'render a task scene to PNG', load: async () => (await import('./sim.js')).simRenderCommand },
  {
    name: 'sim camera',
    summary: "write the simulator camera's pose (a model directory's camera.json)",
    load: async () => (await import('./sim.js')).simCameraCommand,
  },
  {
    name: 'sim run',
    summary: 'run the scripted expert or random policy; success rate and episode GIF',
    load: async () => (await import('./sim.js')).simRunCommand,
  },
  {
    name: 'sim collect',
    summary: 'collect expert episodes as RT-1 RLDS shards',
    load: async () => (await import('./sim.js')).simCollectCommand,
  },
  {
    name: 'sim dagger',
    summary: 'collect DAgger episodes: a policy drives, the scripted expert labels every step',
    load: async () => (await import('./sim.js')).simDaggerCommand,
  },
  {
    name: 'plan',
    summary: 'plan one simulated episode closed-loop with the world model; GIF of real | imagined | goal',
    load: async () => (await import('./plan.js')).planCommand,
  },
  {
    name: 'eval',
    summary: 'multi-step task success rates for expert, random and world-model policies',
    load: async () => (await import('./eval.js')).evalCommand,
  },
  { name: 'eval worker', summary: '(internal) evaluation worker process', load: async () => (await import('./eval.js')).evalWorkerCommand },
  {
    name: 'bench',
    summary: "run the benchmarks and print a table with this machine's numbers",
    load: async () => (await import('./bench.js')).benchCommand,
  },
  {
    name: 'serve',
    summary: 'run the planning service: robot link in, planner, safety layer, commands out, WebSocket API',
    load: async () => (await import('./serve.js')).serveCommand,
  },
  {
    name: 'serve sim-robot',
    summary: 'serve the MuJoCo simulator as a robot over the Foxglove WebSocket protocol',
    load: async () => (await import('./serve.js')).serveSimRobotCommand,
  },
];
