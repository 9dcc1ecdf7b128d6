/** A few of VS Code's theme variables per theme kind (values from the default Dark+, Light+ and HC themes). */
export type ThemeKind = "dark" | "light" | "high-contrast";

export const THEMES: Record<ThemeKind, { bodyClass: string; vars: Record<string, string> }> = {
  dark: {
    bodyClass: "vscode-dark",
    vars: {
      "--vscode-font-family": "system-ui, sans-serif", "--vscode-font-size": "13px", "--vscode-editor-font-family": "monospace",
      "--vscode-foreground": "#cccccc", "--vscode-descriptionForeground": "#9d9d9d", "--vscode-disabledForeground": "#808080",
      "--vscode-editor-background": "#1f1f1f", "--vscode-editorWidget-background": "#202020", "--vscode-editorWidget-border": "#454545",
      "--vscode-charts-green": "#89d185", "--vscode-charts-yellow": "#cca700", "--vscode-charts-orange": "#d18616", "--vscode-charts-red": "#f14c4c",
      "--vscode-charts-blue": "#3794ff", "--vscode-charts-purple": "#b180d7", "--vscode-errorForeground": "#f85149", "--vscode-testing-iconPassed": "#73c991",
      "--vscode-button-background": "#0078d4", "--vscode-button-foreground": "#ffffff", "--vscode-button-hoverBackground": "#026ec1",
      "--vscode-button-secondaryBackground": "#313131", "--vscode-button-secondaryForeground": "#cccccc", "--vscode-badge-background": "#616161", "--vscode-badge-foreground": "#f8f8f8",
      "--vscode-editorHoverWidget-background": "#202020", "--vscode-editorHoverWidget-foreground": "#cccccc", "--vscode-editorHoverWidget-border": "#454545",
      "--vscode-textLink-foreground": "#4daafc", "--vscode-focusBorder": "#0078d4", "--vscode-inputValidation-errorBackground": "#5a1d1d", "--vscode-inputValidation-errorBorder": "#be1100",
    },
  },
  light: {
    bodyClass: "vscode-light",
    vars: {
      "--vscode-font-family": "system-ui, sans-serif", "--vscode-font-size": "13px", "--vscode-editor-font-family": "monospace",
      "--vscode-foreground": "#3b3b3b", "--vscode-descriptionForeground": "#717171", "--vscode-disabledForeground": "#61616180",
      "--vscode-editor-background": "#ffffff", "--vscode-editorWidget-background": "#f8f8f8", "--vscode-editorWidget-border": "#c8c8c8",
      "--vscode-charts-green": "#388a34", "--vscode-charts-yellow": "#bf8803", "--vscode-charts-orange": "#d18616", "--vscode-charts-red": "#e51400",
      "--vscode-charts-blue": "#1a85ff", "--vscode-charts-purple": "#652d90", "--vscode-errorForeground": "#a1260d", "--vscode-testing-iconPassed": "#388a34",
      "--vscode-button-background": "#005fb8", "--vscode-button-foreground": "#ffffff", "--vscode-button-hoverBackground": "#0258a8",
      "--vscode-button-secondaryBackground": "#e5e5e5", "--vscode-button-secondaryForeground": "#3b3b3b", "--vscode-badge-background": "#cccccc", "--vscode-badge-foreground": "#3b3b3b",
      "--vscode-editorHoverWidget-background": "#f8f8f8", "--vscode-editorHoverWidget-foreground": "#3b3b3b", "--vscode-editorHoverWidget-border": "#c8c8c8",
      "--vscode-textLink-foreground": "#005fb8", "--vscode-focusBorder": "#005fb8", "--vscode-inputValidation-errorBackground": "#f2dede", "--vscode-inputValidation-errorBorder": "#be1100",
    },
  },
  "high-contrast": {
    bodyClass: "vscode-high-contrast",
    vars: {
      "--vscode-font-family": "system-ui, sans-serif", "--vscode-font-size": "13px", "--vscode-editor-font-family": "monospace",
      "--vscode-foreground": "#ffffff", "--vscode-descriptionForeground": "#ffffff", "--vscode-disabledForeground": "#a5a5a5",
      "--vscode-editor-background": "#000000", "--vscode-editorWidget-background": "#0c141f", "--vscode-editorWidget-border": "#6fc3df",
      "--vscode-contrastBorder": "#6fc3df", "--vscode-charts-green": "#89d185", "--vscode-charts-yellow": "#ffd700", "--vscode-charts-orange": "#ff8c00", "--vscode-charts-red": "#ff5c5c",
      "--vscode-charts-blue": "#3794ff", "--vscode-charts-purple": "#b180d7", "--vscode-errorForeground": "#f48771", "--vscode-testing-iconPassed": "#73c991",
      "--vscode-button-background": "#000000", "--vscode-button-foreground": "#ffffff", "--vscode-button-border": "#6fc3df",
      "--vscode-button-secondaryBackground": "#000000", "--vscode-button-secondaryForeground": "#ffffff", "--vscode-badge-background": "#000000", "--vscode-badge-foreground": "#ffffff",
      "--vscode-editorHoverWidget-background": "#0c141f", "--vscode-editorHoverWidget-foreground": "#ffffff", "--vscode-editorHoverWidget-border": "#6fc3df",
      "--vscode-textLink-foreground": "#21a6ff", "--vscode-focusBorder": "#f38518", "--vscode-inputValidation-errorBackground": "#000000", "--vscode-inputValidation-errorBorder": "#f48771",
    },
  },
};
