export { runTool, type ToolInput, type ToolResult } from './run-tool';
