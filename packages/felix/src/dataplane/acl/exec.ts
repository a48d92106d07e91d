// Running a tool with optional stdin; the one place the ACL dataplane starts processes
// (through @tortie/exec: spawned off the main thread, input streamed as it is produced).
import { runTool, type ToolInput, type ToolResult } from '@tortie/exec';

export type ExecResult = ToolResult;

/** stdin as a whole string, or as pieces produced while the process already runs. */
export type Stdin = ToolInput;

export type Exec = (argv: string[], stdin?: Stdin) => Promise<ExecResult>;

export const runCommand: Exec = runTool;
